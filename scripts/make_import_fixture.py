#!/usr/bin/env python3
"""Writes tests/fixtures/import-bcrypt.jsonl: users for `suitectl users import`
whose bcrypt hashes come from an independent implementation (PyPI's bcrypt),
one per prefix the user service accepts ($2a$, $2b$, $2y$).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install bcrypt
    /tmp/v/bin/python scripts/make_import_fixture.py > tests/fixtures/import-bcrypt.jsonl

The passwords follow PASSWORD (the test knows it); cost 10 is the cheapest the
user service imports.
"""
import json
import sys

import bcrypt

PASSWORD = "imported {name} horse battery"
USERS = [
    ("2a", "ada.import", "ada.import@example.com", "Ada Imported", "2019-05-01T10:00:00Z"),
    ("2b", "bob.import", "bob.import@example.com", None, None),
    ("2y", "cy.import", "CY.Import@Example.com", "Cy", "2021-12-31T23:59:59+01:00"),
]

for prefix, name, email, display_name, created_at in USERS:
    # PyPI's bcrypt makes $2a$ and $2b$; $2y$ (PHP's) is the same algorithm
    # under another name.
    salt = bcrypt.gensalt(rounds=10, prefix=b"2b" if prefix == "2y" else prefix.encode())
    hashed = bcrypt.hashpw(PASSWORD.format(name=name).encode(), salt).decode()
    if prefix == "2y":
        hashed = "$2y$" + hashed[4:]
    line = {"username": name, "email": email, "password_hash": hashed}
    if display_name is not None:
        line["display_name"] = display_name
    if created_at is not None:
        line["created_at"] = created_at
    sys.stdout.write(json.dumps(line) + "\n")
