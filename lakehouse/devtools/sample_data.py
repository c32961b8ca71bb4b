"""Deterministic sample files for the demo, the tests and the benchmarks.

Each generator returns the file's bytes and what a correct pipeline must make of it, so a
test can compare the bronze table with an independent expectation instead of re-running
the code under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

ORDER_COLUMNS = ["order_id", "customer_id", "amount", "date"]


@dataclass
class SampleOrders:
    rows: list[dict[str, str]]
    valid: dict[int, tuple[int, Decimal, dt.date]] = field(default_factory=dict)  # order_id -> values
    rejected: dict[int, str] = field(default_factory=dict)  # 1-based row number -> expected reason fragment

    def csv_bytes(self) -> bytes:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=ORDER_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return out.getvalue().encode()

    def json_lines_bytes(self) -> bytes:
        return "".join(json.dumps(row) + "\n" for row in self.rows).encode()

    def parquet_bytes(self) -> bytes:
        buffer = io.BytesIO()
        table = pa.table({name: pa.array([row[name] for row in self.rows], pa.string()) for name in ORDER_COLUMNS})
        pq.write_table(table, buffer)
        return buffer.getvalue()


# Invalid rows the generator mixes in: (field overrides, expected reason fragment).
_INVALID_ORDERS: list[tuple[dict[str, str], str]] = [
    ({"amount": "-12.50"}, "amount_positive"),
    ({"amount": "1500000.00"}, "amount_below_limit"),
    ({"date": "2024-12-31"}, "order_date_not_before_2025"),
    ({"customer_id": ""}, "customer_id: required value is missing"),
    ({"amount": "twelve"}, "amount: 'twelve' is not a valid decimal(10,2)"),
    ({"date": "2025-02-30"}, "order_date: '2025-02-30' is not a valid date"),
]


def orders(count: int, invalid_every: int = 0, seed: int = 7, first_order_id: int = 1) -> SampleOrders:
    """`count` orders; every `invalid_every`-th row (if > 0) breaks one rule, cycling through them."""
    rng = random.Random(seed)
    sample = SampleOrders(rows=[])
    start = dt.date(2025, 1, 1)
    for index in range(count):
        order_id = first_order_id + index
        customer_id = rng.randint(1, 5000)
        amount = Decimal(rng.randint(1, 50_000_00)) / 100
        order_date = start + dt.timedelta(days=rng.randint(0, 364))
        row = {
            "order_id": str(order_id),
            "customer_id": str(customer_id),
            "amount": f"{amount:.2f}",
            "date": order_date.isoformat(),
        }
        row_number = index + 1
        if invalid_every and row_number % invalid_every == 0:
            overrides, reason = _INVALID_ORDERS[(row_number // invalid_every - 1) % len(_INVALID_ORDERS)]
            row.update(overrides)
            sample.rejected[row_number] = reason
        else:
            sample.valid[order_id] = (customer_id, amount, order_date)
        sample.rows.append(row)
    return sample


CUSTOMER_COLUMNS = ["customer_id", "name", "email", "country", "signup_date"]


def customers_csv(count: int, bad_emails: int = 0, seed: int = 11) -> tuple[bytes, int]:
    """A customers CSV; the first `bad_emails` rows have malformed emails. Returns (bytes, valid count)."""
    rng = random.Random(seed)
    countries = ["DE", "FR", "US", "GB", "NL"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CUSTOMER_COLUMNS)
    for index in range(count):
        email = "not-an-email" if index < bad_emails else f"user{index}@example.com"
        signup = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 600))
        writer.writerow([index + 1, f"Customer {index + 1}", email, rng.choice(countries), signup.isoformat()])
    return out.getvalue().encode(), count - bad_emails
