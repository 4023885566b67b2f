"""Passwords: argon2id hashing off the event loop, at most `password_hash_concurrency` hashes at once.

Each hash takes `password_memory_kib` of memory and tens of milliseconds of CPU on purpose. Unbounded, a
flood of sign-ups queues one thread per request and starves everything else (a real user's login went from
160 ms to 1.9 s); bounded, the excess waits its turn on the semaphore and the loop stays free.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from eventplane.settings import Settings

T = TypeVar("T")


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self.hasher = PasswordHasher(time_cost=settings.password_time_cost, memory_cost=settings.password_memory_kib)
        self.concurrency = settings.password_hash_concurrency
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="argon2")
        self._slots = asyncio.Semaphore(self.concurrency)
        self._dummy: str | None = None
        self.running = 0  # hashes in progress, and callers waiting for a slot (read by tests and metrics)
        self.waiting = 0

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` (an argon2 call) in the executor once a slot is free."""
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        finally:
            self.running -= 1
            self._slots.release()

    async def hash(self, password: str) -> str:
        return await self.run(lambda: self.hasher.hash(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Constant work whether or not the user exists: an unknown email is checked against a dummy hash."""
        target = password_hash or await self._dummy_hash()
        try:
            await self.run(lambda: self.hasher.verify(target, password))
        except (VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        return self._dummy

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
