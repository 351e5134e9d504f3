"""Rapid reaction: assistance requests, dispatch, cases (tasks, timeline, observables,
evidence, custody), playbooks, offline kits, publishing findings.

`respond.model` is the STIX model every part builds on (types, markings, constructors);
`respond.cases` stores and reads a case through the store's `Access`; `respond.assist`
is request -> dispatch -> hand-back; `respond.roster` the responders a cell can send.
docs/respond.md states the contract.
"""
