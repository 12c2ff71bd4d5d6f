"""make bench's yardstick: the script an administrator would write for the
same job with Debian's Python packages (psycopg2, icalendar, exchangelib),
as straightforwardly as they would: for each person of the people map, read
their events from CalendarServer's tables, parse them with icalendar, and
bulk-create them in their mailbox through EWS with impersonation.

It carries only what the bench's events are (one-hour events in UTC): no
recurrence, time zone, travel time, attendee, ID map or crash recovery, so
it has less to do than calbridge. Prints the number of items created.

Usage: bench_naive.py DSN EWS_URL PEOPLE_CSV USER PASSWORD
"""
import csv
import sys

import icalendar
import psycopg2
from exchangelib import (IMPERSONATION, Account, Build, CalendarItem, Configuration,
                         Credentials, EWSDateTime, Version)

dsn, url, people_csv, user, password = sys.argv[1:6]
config = Configuration(service_endpoint=url, credentials=Credentials(user, password),
                       auth_type="basic", version=Version(build=Build(15, 1, 2507, 6),
                                                          api_version="Exchange2016"))
db = psycopg2.connect(dsn)
created = 0
with open(people_csv, newline="") as f:
    people = [row for row in csv.DictReader(f)]
for person in people:
    account = Account(primary_smtp_address=person["smtp"], config=config, autodiscover=False,
                      access_type=IMPERSONATION, default_timezone=None)
    cur = db.cursor()
    cur.execute("""SELECT o.ICALENDAR_TEXT FROM CALENDAR_HOME h
                     JOIN CALENDAR_BIND b ON b.CALENDAR_HOME_RESOURCE_ID = h.RESOURCE_ID
                          AND b.BIND_MODE = 0 AND b.CALENDAR_RESOURCE_NAME <> 'inbox'
                     JOIN CALENDAR_OBJECT o ON o.CALENDAR_RESOURCE_ID = b.CALENDAR_RESOURCE_ID
                    WHERE h.OWNER_UID = %s""", (person["owner_uid"],))
    items = []
    for (text,) in cur:
        for ev in icalendar.Calendar.from_ical(text).walk("VEVENT"):
            start = ev.decoded("dtstart")
            end = ev.decoded("dtend") if "dtend" in ev else start + ev.decoded("duration")
            items.append(CalendarItem(account=account, folder=account.calendar,
                                      subject=str(ev.get("summary", "")),
                                      start=EWSDateTime.from_datetime(start),
                                      end=EWSDateTime.from_datetime(end)))
    cur.close()
    if items:
        results = account.bulk_create(folder=account.calendar, items=items)
        created += sum(1 for r in results if not isinstance(r, Exception))
print(created)
