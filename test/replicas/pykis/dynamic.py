# -*- coding: utf-8 -*-
"""Replica of how python-kis turns an answer into an object, field by field (``pykis/responses/dynamic.py``,
``KisObject.transform_``, and ``pykis/responses/types.py``, the converters), at the same commit as ``kis.py``.

What is kept, because a server's answer decides it:
* fields are read by name, in ``dir()`` order (alphabetical by attribute); a field missing from the data raises
  KeyError unless the field has a default or the transform ignores missing fields;
* ``""`` is "no value" for the typed converters (KisNoneValueError): a nullable field becomes None, any other
  raises ValueError; a converter that fails raises ValueError naming the attribute;
* KisDecimal normalises (``Decimal("71000").normalize()``), KisBool is true for "y"/"true" in any case, KisDate
  parses ``%Y%m%d`` in Asia/Seoul.

Written anew: a field is a tuple (attribute, JSON field, converter, default, nullable) instead of a descriptor.
"""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

TIMEZONE = ZoneInfo("Asia/Seoul")
EMPTY = object()  # no default: a missing field is an error


class KisNoneValueError(Exception):
    """An empty value, which a non-nullable field refuses."""


def as_str(value):
    return value if isinstance(value, str) else str(value)


def as_int(value):
    if isinstance(value, int):
        return value
    if value == "":
        raise KisNoneValueError
    return int(value)


def as_decimal(value):
    if isinstance(value, Decimal):
        return value
    if value == "":
        raise KisNoneValueError
    return Decimal(value).normalize()


def as_bool(value):
    if isinstance(value, bool):
        return value
    if value == "":
        raise KisNoneValueError
    if isinstance(value, int):
        return value != 0
    return str(value).lower() in ("y", "true")


def as_date(value):
    if value == "":
        raise KisNoneValueError
    return datetime.strptime(value, "%Y%m%d").replace(tzinfo=TIMEZONE).date()


def as_kst_datetime(value):
    if isinstance(value, datetime):
        return value
    if value == "":
        raise KisNoneValueError
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=TIMEZONE)


def mapped(table):
    """KisAny(TABLE.__getitem__): an unknown code raises KeyError, which the transform turns into ValueError."""
    return table.__getitem__


def field(name, convert, default=EMPTY, nullable=False):
    return (name, convert, default, nullable)


def transform(obj, fields, data, ignore_missing=False):
    """Sets each attribute of ``obj`` from ``data`` as KisObject.transform_ does; returns ``obj``.

    ``fields`` maps attribute -> field(...); a JSON field name of None hands the whole ``data`` to the converter
    (KisTransform, used for nested objects)."""
    name = type(obj).__name__
    for attr in sorted(fields):
        json_field, convert, default, nullable = fields[attr]
        if json_field is None:
            value = data
        elif json_field not in data:
            if default is EMPTY:
                if ignore_missing:
                    continue
                raise KeyError(f"{name}.{attr} 필드의 {json_field}값이 존재하지 않습니다.")
            value = default
        else:
            value = data[json_field]
        result = EMPTY
        if value is not None:
            try:
                result = convert(value)
            except KisNoneValueError:
                pass
            except Exception as e:
                raise ValueError(f"{name}.{attr} 필드를 변환하는 중 오류가 발생했습니다.\n→ {type(e).__name__}: {e}") from e
        if result is EMPTY:
            if not nullable:
                raise ValueError(f"{name}.{attr} 필드의 값이 빈 값입니다.")
            result = None
        setattr(obj, attr, result)
    obj.__data__ = data
    return obj
