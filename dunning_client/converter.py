"""The data converter of every Relance process: pydantic JSON, as
`temporalio.contrib.pydantic`, with one schema per payload type for the whole
process.

The SDK instantiates the payload converter class once per workflow run (inside
the sandbox), and the stock pydantic converter keeps its `TypeAdapter` cache on
the instance: every cached workflow then held its own schema of `DunningInput`
(policy, clock, state: tens of kilobytes each, measured by benchmark 4). Type
adapters are immutable and thread-safe once built, so one cache serves them all.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

_TYPE_ADAPTERS: functools._lru_cache_wrapper[TypeAdapter[Any]] = functools.lru_cache(
    maxsize=1024)(TypeAdapter)


class SharedSchemaJSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    def __init__(self) -> None:
        super().__init__(max_cached_type_adapters=0)
        self._type_adapter = _TYPE_ADAPTERS

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._type_adapter = _TYPE_ADAPTERS


class RelancePayloadConverter(CompositePayloadConverter):
    """The SDK's default encodings, with JSON done by pydantic."""

    def __init__(self) -> None:
        json = SharedSchemaJSONPayloadConverter()
        super().__init__(*(json if isinstance(c, JSONPlainPayloadConverter) else c
                           for c in DefaultPayloadConverter.default_encoding_payload_converters))


relance_data_converter = DataConverter(payload_converter_class=RelancePayloadConverter)
