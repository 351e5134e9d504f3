"""Collective assessment: severity, attribution support, and the consultation policy.

Every figure this room produces carries its explanation, and every judgement it supports
is left to a named person: the coordination cell decides, the tool recommends.
"""
