"""Kami's own date and number formats per language (``FORMAT_MODULE_PATH``), over Django's.

Short dates stay ISO in English (``2025-03-01``), as the pages always showed them; Simplified
Chinese reads ``2025年3月1日`` (Django's). Both group thousands by three with a comma, as prices
are written in China too (Django's zh_Hans has no separator, grouped by four).
"""
