package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (the kernel exports a fixed
// USER_HZ to user space whatever its internal HZ), so it is not read with
// sysconf, which would need cgo.
const clockTicks = 100

// procStat is what benchrun reads from /proc/PID/stat.
type procStat struct {
	PPID         int
	UTime, STime uint64 // clock ticks
}

// parseStat reads /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ')'.
func parseStat(data string) (procStat, error) {
	i := strings.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no command name")
	}
	f := strings.Fields(data[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var s procStat
	var err error
	if s.PPID, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("stat: ppid: %w", err)
	}
	if s.UTime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("stat: utime: %w", err)
	}
	if s.STime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("stat: stime: %w", err)
	}
	return s, nil
}

// parseHWM reads the peak resident set size (VmHWM, in KiB) from
// /proc/PID/status.
func parseHWM(data string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmHWM %q: want \"N kB\"", strings.TrimSpace(rest))
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, errors.New("status: no VmHWM line")
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

func readHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseHWM(string(b))
}

// family is pid and its children (nginx's master and workers).
func family(pid int) []int {
	pids := []int{pid}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if s, err := readStat(child); err == nil && s.PPID == pid {
			pids = append(pids, child)
		}
	}
	return pids
}

// usage is a process family's CPU time so far and its peak RSS.
type usage struct {
	Ticks  uint64
	HWMKiB int64
}

func measure(pids []int) (usage, error) {
	var u usage
	for _, p := range pids {
		s, err := readStat(p)
		if err != nil {
			return usage{}, err
		}
		h, err := readHWM(p)
		if err != nil {
			return usage{}, err
		}
		u.Ticks += s.UTime + s.STime
		u.HWMKiB += h
	}
	return u, nil
}

// proc is one process benchrun started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // its stdout and stderr
	done chan struct{}
	err  error // set when done is closed
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited tells whether the process has ended, and its log's tail if so.
func (p *proc) exited() (bool, string) {
	select {
	case <-p.done:
		return true, tail(p.log, 6)
	default:
		return false, ""
	}
}

// supervisor starts processes in their own process groups and ends them
// all, whatever happens: Stop on the normal path and on errors, and the
// kernel (Pdeathsig) if benchrun itself is killed.
type supervisor struct {
	dir   string
	mu    sync.Mutex
	procs []*proc
}

func (s *supervisor) start(name string, env []string, args ...string) (*proc, error) {
	return s.startWith(name, env, syscall.SIGKILL, args...)
}

// startWith is start with the signal the kernel sends the process if
// benchrun dies. nginx needs SIGTERM: killed outright, its master leaves
// its workers running.
func (s *supervisor) startWith(name string, env []string, deathSig syscall.Signal, args ...string) (*proc, error) {
	logPath := filepath.Join(s.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// stop ends p's process group: SIGTERM, then SIGKILL after a grace period.
func (s *supervisor) stop(p *proc) {
	pgid := p.pid()
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Workers of a group leader that already left (nginx's) get the same end.
	syscall.Kill(-pgid, syscall.SIGKILL)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.procs {
		if q == p {
			s.procs = append(s.procs[:i], s.procs[i+1:]...)
			break
		}
	}
}

// stopAll ends every process still running, newest first.
func (s *supervisor) stopAll() {
	for {
		s.mu.Lock()
		n := len(s.procs)
		var p *proc
		if n > 0 {
			p = s.procs[n-1]
		}
		s.mu.Unlock()
		if p == nil {
			return
		}
		s.stop(p)
	}
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls until addr accepts connections (and, when health is not
// "", answers 200 there), the process ends, or the deadline passes.
func waitReady(ctx context.Context, p *proc, addr, health string, useTLS bool) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the bench's own self-signed certificate
	}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if gone, why := p.exited(); gone {
			return fmt.Errorf("%s exited at start-up: %s", p.name, why)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if health == "" {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return nil
			}
		} else {
			scheme := "http"
			if useTLS {
				scheme = "https"
			}
			if resp, err := client.Get(scheme + "://" + addr + health); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s is not ready on %s after 20s: %s", p.name, addr, tail(p.log, 6))
}

// tail returns the last n lines of a file, joined with " | ".
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(string(bytes.TrimSpace(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
