"""The base of the Kubernetes-shaped models: Python names in code, camelCase on the wire."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class K8sModel(BaseModel):
    # Unknown fields are ignored: the API server already prunes what the CRD schema does not know,
    # and an older reader must not break on a newer writer's fields.
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    def to_k8s(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
