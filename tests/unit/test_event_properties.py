"""Property tests: the parser's only failure mode is the typed error."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from casewatch.errors import InvalidCaseEventError
from casewatch.models.events import parse_case_event
from casewatch.models.fields import FieldValue
from tests.builders import SAMPLE_FILES, load_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
SAMPLES = [load_event(p.stem) for p in SAMPLE_FILES]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _parse_or_typed_error(raw: object) -> None:
    try:
        parse_case_event(raw)
    except InvalidCaseEventError as exc:
        assert exc.reason


@given(json_values)
def test_any_json_value_parses_or_raises_the_typed_error(raw: object) -> None:
    _parse_or_typed_error(raw)


@given(st.binary(max_size=64) | st.text(max_size=64))
def test_any_text_parses_or_raises_the_typed_error(raw: bytes | str) -> None:
    _parse_or_typed_error(raw)


@settings(max_examples=300)
@given(st.data())
def test_mutated_samples_parse_or_raise_the_typed_error(data: st.DataObject) -> None:
    """Near-valid events: replace or delete one node anywhere in a real sample."""
    raw = copy.deepcopy(data.draw(st.sampled_from(SAMPLES)))
    path = data.draw(st.sampled_from(_paths(raw)))
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    _parse_or_typed_error(raw)


scalars = (
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4100)
)


@given(scalars)
def test_field_value_round_trip(value: str | float | bool | None) -> None:
    field = FieldValue.of(value)
    assert field.python == value
    assert FieldValue.model_validate(field.to_wire()) == field
    assert len(field.to_wire()) == 1


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_date_time_fields_as_iso_or_epoch_millis(moment: datetime) -> None:
    moment = moment.replace(tzinfo=UTC, microsecond=(moment.microsecond // 1000) * 1000)
    assert FieldValue.of(moment.isoformat()).as_datetime() == moment
    millis = FieldValue.of(moment.timestamp() * 1000).as_datetime()
    assert millis is not None and abs((millis - moment).total_seconds()) < 0.002
