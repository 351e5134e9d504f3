"""A node composed from its config: the store, and the member identity it writes as."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from shieldwall.config import NodeConfig, load_config
from shieldwall.stix.identity import member_identity, member_identity_id
from shieldwall.store import Store

__all__ = ["Node", "member_identity", "member_identity_id"]


@dataclass
class Node:
    config: NodeConfig

    @classmethod
    def load(cls, home: Path) -> Node:
        return cls(load_config(home))

    @cached_property
    def store(self) -> Store:
        return Store.open(self.config.db_url)

    @property
    def member(self) -> str:
        return self.config.member

    @property
    def identity_id(self) -> str:
        return member_identity_id(self.config.member)

    def identity(self) -> dict:
        return member_identity(self.config.member)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
