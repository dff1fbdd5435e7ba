"""Moved to :mod:`heptool.sip` (issue 12): this module only re-exports, until every caller
imports the new paths.

The definition of how heptool reads SIP text is now the docstring of
:mod:`heptool.sip.info`; ids are in :mod:`heptool.sip.ids`, the OpenSIPS JSON unwrapping in
:mod:`heptool.sip.payload`, header reading in :mod:`heptool.sip.headers`, and
:func:`printable` / :func:`summary` in :mod:`heptool.sip.summary`.
"""

from __future__ import annotations

from ..sip.headers import header_values
from ..sip.ids import (
    call_id,
    sip_ids,
    sip_ids_general,
    sip_ids_py,
    sip_ids_ref,
    sip_label,
    xcid_hint,
)
from ..sip.info import sip_info, sip_of_text, sip_text_info, sip_text_info_py, sip_text_info_ref
from ..sip.payload import sip_payload, sip_text
from ..sip.summary import printable, summary

__all__ = ["call_id", "header_values", "printable", "sip_ids", "sip_ids_general", "sip_ids_py",
           "sip_ids_ref", "sip_info", "sip_label", "sip_of_text", "sip_payload", "sip_text",
           "sip_text_info", "sip_text_info_py", "sip_text_info_ref", "summary", "xcid_hint"]
