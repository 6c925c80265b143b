"""Decoding sample batches from JSON, NDJSON and CSV without losing decimal exactness."""

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from meterplane.kit.errors import InvalidInput
from meterplane.metering.schemas import RejectedRow


@dataclass
class DecodedBatch:
    """Rows to validate; a line that was not even JSON holds ``None`` and a pre-made rejection."""

    rows: list[Any] = field(default_factory=list)
    undecodable: list[RejectedRow] = field(default_factory=list)


def _loads(text: str | bytes) -> Any:
    # JSON numbers become Decimal, never float: 0.1 stays 0.1.
    return json.loads(text, parse_float=Decimal)


def decode_json_batch(body: bytes, *, max_samples: int) -> DecodedBatch:
    try:
        document = _loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(document, dict) or not isinstance(document.get("samples"), list):
        raise InvalidInput('expected a JSON object {"samples": [...]}', code="invalid_body")
    rows = document["samples"]
    _check_size(len(rows), max_samples)
    return DecodedBatch(rows=rows)


def decode_ndjson_lines(lines: Iterable[str | bytes], *, max_samples: int) -> DecodedBatch:
    batch = DecodedBatch()
    for line in lines:
        if not line.strip():
            continue
        index = len(batch.rows)
        _check_size(index + 1, max_samples)
        try:
            batch.rows.append(_loads(line))
        except (ValueError, UnicodeDecodeError) as exc:
            batch.rows.append(None)
            batch.undecodable.append(
                RejectedRow(index=index, code="malformed_json", message=f"not valid JSON: {exc}")
            )
    return batch


def _check_size(count: int, max_samples: int) -> None:
    if count > max_samples:
        raise InvalidInput(
            f"a batch holds at most {max_samples} samples; split it",
            code="batch_too_large",
            max_samples=max_samples,
        )


def iter_file_chunks(stream: IO[str], fmt: str, chunk_size: int) -> Iterator[DecodedBatch]:
    """Read a CSV (with a header row) or NDJSON file as consecutive batches."""
    if fmt == "csv":
        reader = csv.DictReader(stream)
        chunk: list[Any] = []
        for record in reader:
            # An empty cell is a missing value, not the number "".
            chunk.append({k: v for k, v in record.items() if k is not None and v not in ("", None)})
            if len(chunk) == chunk_size:
                yield DecodedBatch(rows=chunk)
                chunk = []
        if chunk:
            yield DecodedBatch(rows=chunk)
        return
    lines: list[str] = []
    for line in stream:
        if line.strip():
            lines.append(line)
        if len(lines) == chunk_size:
            yield decode_ndjson_lines(lines, max_samples=chunk_size)
            lines = []
    if lines:
        yield decode_ndjson_lines(lines, max_samples=chunk_size)
