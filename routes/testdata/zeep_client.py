"""A third-party SOAP client (python-zeep) against Busbar's facade.

Usage: python3 zeep_client.py WSDL_URL
Reads the WSDL Busbar publishes, calls SubmitExpense over the SOAP 1.1 and
the SOAP 1.2 port, triggers a fault, and prints one line per result.
"""
import datetime
import decimal
import sys

import zeep
import zeep.exceptions

client = zeep.Client(sys.argv[1])

for port in ("ExpenseSoap11Port", "ExpenseSoap12Port"):
    svc = client.bind("ExpenseService", port)
    res = svc.SubmitExpense(
        employeeId="E1001", claimNo="ZEEP-" + port[-6:-4], date=datetime.date(2026, 11, 20),
        currency="CNY", amount=decimal.Decimal("380.50"), purpose="出租车")
    print("OK", port, res.claimId, res.status, repr(res.amount))
    try:
        svc.SubmitExpense(employeeId="E1001", claimNo="ZEEP-BIG", date=datetime.date(2026, 11, 20),
                          currency="CNY", amount=decimal.Decimal("99000"))
        print("NO FAULT", port)
    except zeep.exceptions.Fault as f:
        print("FAULT", port, f.code, f.message)
    st = svc.GetExpenseStatus(claimId="CLM-ZEEP-1")
    print("STATUS", port, st.claimId, st.status)
