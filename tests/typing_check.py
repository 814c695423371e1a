"""Checked by ``mypy --strict`` in tests/test_typing.py (not collected by pytest)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import galileo_sessions as gs


@gs.trace
def agent(question: str, *, retries: int = 0) -> str:
    return question * (retries + 1)


@gs.span(type="llm", model="gpt-4o")
async def call_model(messages: list[dict[str, str]]) -> dict[str, str]:
    return messages[-1]


@gs.log(span_type="tool")
def search(q: str) -> list[str]:
    return [q]


@gs.span
def stream(n: int) -> Iterator[str]:
    yield from ("a" for _ in range(n))


@gs.span(type="llm")
async def astream(prompt: str) -> AsyncIterator[str]:
    yield prompt


@gs.session("turn", external_id=lambda user_id, msg: user_id)
def handle_turn(user_id: str, msg: str) -> str:
    return agent(msg)


@gs.session("turn")
async def ahandle_turn(user_id: str) -> int:
    reply = await call_model([{"role": "user", "content": user_id}])
    return len(reply)


class Bot:
    @gs.span
    def method(self, x: int) -> int:
        return x


async def main() -> None:
    answer: str = agent("q", retries=1)
    docs: list[str] = search("x")
    parts: list[str] = list(stream(2))
    chunks = [c async for c in astream("p")]
    first: str = chunks[0]
    reply: str = handle_turn("u", "m")
    count: int = await ahandle_turn("u")
    value: int = Bot().method(3)
    with gs.session("s") as s, gs.trace("t", input="x") as t, gs.span("sp", type="tool"):
        sid: str | None = s.id
        t.update(output="o", metadata={"k": "v"}, tags=["a"], status_code=200)
        gs.current_span().update(input_tokens=1, output_tokens=2, model="m")
    async with gs.session("a"), gs.span("b"):
        pass
    result: gs.FlushResult = gs.flush(1.0)
    with gs.ContextExecutor(2) as pool:
        fut = pool.submit(gs.wrap(search), "q")
        more: list[str] = fut.result()
    print(answer, docs, parts, first, reply, count, value, sid, result, more)
