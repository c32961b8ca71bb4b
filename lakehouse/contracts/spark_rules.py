"""The contract's checks as Spark Column expressions: the Spark job's twin of lakehouse.ingest.validation.

Same checks, same counts, same reason texts as the Arrow engine, so a file gives the same bronze rows
and the same quarantine whichever engine handles it (tests/unit/test_spark_rules.py holds the two
against each other). Patterns and boolean spellings are imported from the Arrow module rather than
written out again.

Everything here only builds expressions. They need a session with `spark.sql.ansi.enabled=false`
(a cast of bad text gives null instead of failing the job) and `spark.sql.session.timeZone=UTC`;
the job sets both (SESSION_CONF).

The input frame has one column per source column (text, or already typed as in raw/) and
SOURCE_ROW, the 1-based row number that rejected rows keep.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql import types as st

from lakehouse.contracts.arrow_schema import raw_schema
from lakehouse.contracts.model import Column, DatasetContract, Rule, rule_value_as
from lakehouse.contracts.spark_schema import spark_type
from lakehouse.ingest.readers import ROW_NUMBER
from lakehouse.ingest.validation import (
    BOOLEAN_TEXT,
    RAW_RECORD,
    REJECT_REASON,
    CheckResult,
    MissingColumnsError,
    invalid_value_reason_parts,
    required_reason,
    rule_reason_parts,
    value_pattern,
)

SOURCE_ROW = ROW_NUMBER
SESSION_CONF = {"spark.sql.ansi.enabled": "false", "spark.sql.session.timeZone": "UTC"}
# Internal columns carry a prefix no contract column can have (names match ^[a-z_][a-z0-9_]*$ only
# after renames; source names are free text, so the prefix is long and explicit).
_INTERNAL = "__lakehouse_"
_BAD = f"{_INTERNAL}bad"


@dataclass(frozen=True)
class ParsedColumn:
    column: Column
    text: SparkColumn  # trimmed text, null when absent or empty: what reasons quote
    value: SparkColumn  # typed value, null when absent or invalid
    invalid: SparkColumn  # present but not a valid value of its type; never null


@dataclass(frozen=True)
class Check:
    """One data-quality count: rows where `evaluated` holds are counted, `failed` ones as failures."""

    name: str
    column: str
    failed: SparkColumn
    evaluated: SparkColumn


@dataclass(frozen=True)
class Rejection:
    """A failure that rejects its row, with the reason text the Arrow engine writes for it."""

    failed: SparkColumn
    reason: SparkColumn


@dataclass(frozen=True)
class ValidationPlan:
    parsed: list[ParsedColumn]
    checks: list[Check]
    rejections: list[Rejection]


def resolve_source(column: Column, input_names: list[str]) -> str | None:
    """raw/ carries renamed (target) names, an upload its source names; either is accepted."""
    for name in (column.target_name, column.name):
        if name in input_names:
            return name
    return None


def trimmed_text(source: SparkColumn, input_type: st.DataType) -> SparkColumn:
    """Like validation._text_column: Unicode whitespace trimmed, empty meaning no value."""
    text = source if isinstance(input_type, st.StringType) else source.cast(st.StringType())
    trimmed = sf.regexp_replace(text, r"(?U)^\s+|\s+$", "")
    return sf.when(trimmed != "", trimmed)


def parse_column(column: Column, source: SparkColumn | None, input_type: st.DataType | None) -> ParsedColumn:
    target = spark_type(column)
    if source is None or input_type is None:
        absent = sf.lit(None).cast(st.StringType())
        return ParsedColumn(column, absent, sf.lit(None).cast(target), sf.lit(False))
    text = trimmed_text(source, input_type)
    if input_type == target and not isinstance(target, st.StringType):  # typed raw/: nothing to parse
        return ParsedColumn(column, text, source, sf.lit(False))
    value, invalid = parse_text(column, text)
    return ParsedColumn(column, text, value, invalid)


def parse_text(column: Column, text: SparkColumn) -> tuple[SparkColumn, SparkColumn]:
    """Typed value (null when absent or invalid) and the present-but-invalid flag, as validation._parse."""
    target = spark_type(column)
    present = text.isNotNull()
    if column.type == "string":
        return text, sf.lit(False)
    if column.type == "boolean":
        lowered = sf.lower(text)
        ok = sf.coalesce(lowered.isin(list(BOOLEAN_TEXT)), sf.lit(False))
        truthy = [spelling for spelling, meaning in BOOLEAN_TEXT.items() if meaning]
        return sf.when(ok, lowered.isin(truthy)), present & ~ok
    if column.type == "timestamp":
        value = _iso_timestamp_udf(text)
        return value, present & value.isNull()

    ok = sf.coalesce(text.rlike(value_pattern(column)), sf.lit(False))
    candidates = sf.when(ok, text)
    if column.type == "date":
        value = candidates.cast(st.DateType())
        # A real date prints back the same (2025-02-30 does not), the check the Arrow engine makes.
        ok = ok & sf.coalesce(sf.date_format(value, "yyyy-MM-dd") == candidates, sf.lit(False))
    elif column.type == "int":
        wide = candidates.cast(st.LongType())
        ok = ok & sf.coalesce(wide.between(-(2**31), 2**31 - 1), sf.lit(False))
        value = wide.cast(st.IntegerType())
    else:
        value = candidates.cast(target)
    return sf.when(ok, value), present & ~ok


def _iso_timestamp(text: str | None) -> dt.datetime | None:
    """validation._parse_timestamps for one value: ISO 8601, offsets normalised to naive UTC."""
    if text is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


# Python UDFs: the Arrow engine parses timestamps and quotes values with Python itself, so the
# exact same functions run here. The quoting one only ever sees rejected rows.
_iso_timestamp_udf = sf.udf(_iso_timestamp, st.TimestampNTZType())
_python_repr_udf = sf.udf(lambda text: None if text is None else repr(text), st.StringType())


def rule_literal(rule_value: object, column: Column) -> SparkColumn:
    value = rule_value_as(column, rule_value)
    target = spark_type(column)
    if isinstance(value, dt.datetime):  # text, so the session time zone cannot shift it
        return sf.lit(value.isoformat()).cast(target)
    return sf.lit(value).cast(target)


def rule_holds(rule: Rule, column: Column, value: SparkColumn) -> SparkColumn:
    if rule.op == "matches":
        return value.rlike(str(rule.value))
    if rule.op == "in":
        assert isinstance(rule.value, list)
        return value.isin([rule_literal(v, column) for v in rule.value])
    literal = rule_literal(rule.value, column)
    compare = {
        "gt": value > literal,
        "ge": value >= literal,
        "lt": value < literal,
        "le": value <= literal,
        "eq": value == literal,
        "ne": value != literal,
    }
    return compare[rule.op]


def validation_plan(contract: DatasetContract, input_schema: st.StructType) -> ValidationPlan:
    names = [f.name for f in input_schema.fields if f.name != SOURCE_ROW]
    missing = [c.name for c in contract.columns if c.required and resolve_source(c, names) is None]
    if missing:
        raise MissingColumnsError(missing, names)

    parsed: dict[str, ParsedColumn] = {}
    checks: list[Check] = []
    rejections: list[Rejection] = []
    for column in contract.columns:
        source = resolve_source(column, names)
        input_type = input_schema[source].dataType if source else None
        p = parse_column(column, sf.col(_quoted(source)) if source else None, input_type)
        parsed[column.target_name] = p
        target = column.target_name
        absent = p.value.isNull() & ~p.invalid
        checks.append(Check("not_null", target, absent, sf.lit(True)))
        checks.append(Check(f"type_{column.type}", target, p.invalid, sf.lit(True)))
        before, after = invalid_value_reason_parts(column)
        rejections.append(Rejection(p.invalid, sf.concat(sf.lit(before), _python_repr_udf(p.text), sf.lit(after))))
        if column.required:
            rejections.append(Rejection(absent, sf.lit(required_reason(column))))

    for rule in contract.rules:
        column = contract.column(rule.column)
        p = parsed[rule.column]
        present = p.value.isNotNull()
        failed = present & ~sf.coalesce(rule_holds(rule, column, p.value), sf.lit(False))
        checks.append(Check(rule.name, rule.column, failed, present))
        before, after = rule_reason_parts(rule, column)
        rejections.append(Rejection(failed, sf.concat(sf.lit(before), p.text, sf.lit(after))))
    return ValidationPlan(list(parsed.values()), checks, rejections)


def _quoted(name: str) -> str:
    """A column reference that survives dots and spaces in source names."""
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class CheckedFrame:
    """The input with typed values and one flag per check. Persist it: the counts, the valid rows
    and the rejected rows are three reads of it."""

    frame: DataFrame
    contract: DatasetContract
    source_columns: list[str]
    plan: ValidationPlan

    def check_results(self) -> list[CheckResult]:
        """One pass over the data for every count, in the Arrow engine's order (row_count first)."""
        sums = [sf.count(sf.lit(1)), sf.sum(sf.col(_BAD).cast(st.LongType()))]
        for i, _ in enumerate(self.plan.checks):
            sums.append(sf.sum(sf.col(_flag("check", i)).cast(st.LongType())))
            sums.append(sf.sum(sf.col(_flag("evaluated", i)).cast(st.LongType())))
        row = self.frame.agg(*sums).first()
        values = [int(v or 0) for v in (row or [])]
        total, rejected = values[0], values[1]
        results = [CheckResult("row_count", "", total - rejected, rejected)]
        for i, check in enumerate(self.plan.checks):
            failed, evaluated = values[2 + 2 * i], values[3 + 2 * i]
            results.append(CheckResult(check.name, check.column, evaluated - failed, failed))
        return results

    def valid_rows(self) -> DataFrame:
        """Typed, renamed contract columns: the raw schema, as the built-in engine writes raw/."""
        return self.frame.filter(~sf.col(_BAD)).select(
            *[sf.col(_value(i)).alias(field.name) for i, field in enumerate(raw_schema(self.contract))]
        )

    def rejected_rows(self, upload_id: str) -> DataFrame:
        """The quarantine layout of lakehouse.ingest.builtin: row number, every source column as its
        original text, the raw record (Parquet has no unparseable lines), reasons, upload id."""
        reasons = [sf.when(sf.col(_flag("reject", i)), r.reason) for i, r in enumerate(self.plan.rejections)]
        return (
            self.frame.filter(sf.col(_BAD))
            .select(
                sf.col(SOURCE_ROW).cast(st.LongType()).alias(SOURCE_ROW),
                *[sf.col(_quoted(name)).cast(st.StringType()).alias(name) for name in self.source_columns],
                sf.lit(None).cast(st.StringType()).alias(RAW_RECORD),
                (sf.concat_ws("; ", *reasons) if reasons else sf.lit("")).alias(REJECT_REASON),
                sf.lit(upload_id).alias("_upload_id"),
            )
            .orderBy(SOURCE_ROW)
        )


def check_frame(frame: DataFrame, contract: DatasetContract) -> CheckedFrame:
    plan = validation_plan(contract, frame.schema)
    source_columns = [name for name in frame.columns if name != SOURCE_ROW]
    bad = sf.lit(False)
    for rejection in plan.rejections:
        bad = bad | rejection.failed
    checked = frame.select(
        "*",
        *[p.value.alias(_value(i)) for i, p in enumerate(plan.parsed)],
        *[c.failed.alias(_flag("check", i)) for i, c in enumerate(plan.checks)],
        *[c.evaluated.alias(_flag("evaluated", i)) for i, c in enumerate(plan.checks)],
        *[r.failed.alias(_flag("reject", i)) for i, r in enumerate(plan.rejections)],
        bad.alias(_BAD),
    )
    return CheckedFrame(checked, contract, source_columns, plan)


def _value(index: int) -> str:
    return f"{_INTERNAL}value_{index}"


def _flag(kind: str, index: int) -> str:
    return f"{_INTERNAL}{kind}_{index}"
