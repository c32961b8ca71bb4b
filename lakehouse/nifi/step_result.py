"""What the NiFi flow writes beside a run's raw file: counts, checks, or why it could not ingest.

The operator waits for this object; the raw and quarantine files are complete once it exists and the
objects it names are there too (the flow PUTs the three objects independently, in any order).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lakehouse.ingest.validation import CheckResult

# Entry names in the step's tar output; the flow picks each entry's presigned URL by its name.
RAW_ENTRY = "raw.parquet"
QUARANTINE_ENTRY = "quarantine.parquet"
RESULT_ENTRY = "manifest.json"  # the flow's name for the step result (lakehouse/nifi/flows)


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class StepError(_Model):
    reason: str  # CamelCase, as on the run's Failed condition
    message: str


class CheckCount(_Model):
    check_name: str = Field(alias="checkName")
    column: str
    passed: int
    failed: int

    def as_result(self) -> CheckResult:
        return CheckResult(self.check_name, self.column, self.passed, self.failed)


class StepResult(_Model):
    upload_id: str = Field(alias="uploadId")
    # The IngestionRun's uid: a run re-created under the same name never takes an older run's results.
    run_uid: str | None = Field(default=None, alias="runUid")
    dataset: str | None = None
    contract_version: int | None = Field(default=None, alias="contractVersion")
    input_rows: int = Field(default=0, alias="inputRows")
    valid_rows: int = Field(default=0, alias="validRows")
    rejected_rows: int = Field(default=0, alias="rejectedRows")
    bytes_in: int = Field(default=0, alias="bytesIn")
    checks: list[CheckCount] = Field(default_factory=list)
    error: StepError | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StepResult:
        return cls.model_validate_json(data)
