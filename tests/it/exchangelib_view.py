"""Reads a mailbox's calendar through python3-exchangelib, a real EWS client,
against the simulator, and prints how many calendar items it found."""
import sys
from exchangelib import Account, Configuration, Credentials, IMPERSONATION, Build, Version
from exchangelib.protocol import BaseProtocol

url, mailbox = sys.argv[1], sys.argv[2]
config = Configuration(service_endpoint=url, credentials=Credentials("svc", "secret"),
                       auth_type="basic", version=Version(build=Build(15, 1, 2507, 6),
                                                          api_version="Exchange2016"))
account = Account(primary_smtp_address=mailbox, config=config, autodiscover=False,
                  access_type=IMPERSONATION, default_timezone=None)
items = list(account.calendar.all().only("subject", "start", "end"))
print(len(items))
