"""A multi-turn customer-support agent, traced with galileo_sessions. No LLM, no network.

Two customers each have a three-turn conversation. Every turn is one session, chained to the
customer's previous turn (``external_id`` is the customer id), holding one trace with:

* a workflow span planning the turn, a retriever span over a small knowledge base,
* an llm span (a scripted fake model) deciding which tool to call,
* a tool call run in a thread pool (``gs.ContextExecutor``), nested under the agent,
* two async tool calls run together with ``asyncio.gather``,
* a streaming llm generator producing the answer token by token,
* a tool that fails (handled by the agent, recorded as an error span).

With no GALILEO_API_KEY set, everything lands in the local store (.galileo_sessions/store.db
by default) and the script ends by printing the session chains and one session's traces.
Run it twice: the new turns link to the last turns of the first run.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from typing import Any

import galileo_sessions as gs
from galileo_sessions import cli

KNOWLEDGE_BASE = {
    "refund": "Refunds are issued within 5 business days to the original payment method.",
    "shipping": "Standard shipping takes 3-5 days; express takes 1-2 days.",
    "warranty": "Every device carries a two-year warranty against manufacturing defects.",
    "order": "Order status can be checked with the order id on the account page.",
}
ORDERS = {"A-1001": "shipped", "A-1002": "processing", "B-2001": "delivered"}

CONVERSATIONS = {
    "alice": ["Where is my order A-1001?", "How long does shipping take?",
              "Can I get a refund if it arrives broken?"],
    "bob": ["What is the warranty on my headphones?", "Is order B-2001 delivered?",
            "Please cancel order B-9999"],
}


class OrderNotFound(Exception):
    """Raised by the order tool; carries an HTTP-like status code recorded on the span."""

    status_code = 404


# -- tools and model -----------------------------------------------------------------------
@gs.span(type="retriever")
def search_kb(query: str) -> list[dict[str, Any]]:
    words = query.lower()
    hits = [{"content": text, "metadata": {"topic": topic}}
            for topic, text in KNOWLEDGE_BASE.items() if topic in words]
    return hits or [{"content": KNOWLEDGE_BASE["order"], "metadata": {"topic": "order"}}]


@gs.span(type="tool")
def lookup_order(order_id: str) -> str:
    if order_id not in ORDERS:
        raise OrderNotFound(f"no order {order_id}")
    return f"order {order_id} is {ORDERS[order_id]}"


@gs.span(type="tool")
async def check_inventory(product: str) -> str:
    await asyncio.sleep(0.01)
    return f"{product}: 12 in stock"


@gs.span(type="tool")
async def estimate_shipping(zone: str) -> str:
    await asyncio.sleep(0.01)
    return f"zone {zone}: 3 days"


@gs.span(type="llm", model="scripted-model-1", temperature=0.0)
def decide(messages: list[dict[str, str]]) -> dict[str, Any]:
    """A fake model: picks a tool from keywords; returns an OpenAI-shaped response."""
    question = messages[-1]["content"]
    order_ids = [w.strip("?.,") for w in question.split() if "-" in w]
    action = f"lookup_order:{order_ids[0]}" if order_ids else "answer"
    prompt_tokens = sum(len(m["content"].split()) for m in messages)
    gs.current_span().update(metadata={"router": "keywords"})
    return {"model": "scripted-model-1",
            "choices": [{"message": {"role": "assistant", "content": action},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 3,
                      "total_tokens": prompt_tokens + 3}}


@gs.span(type="llm", model="scripted-model-1")
def stream_answer(messages: list[dict[str, str]]) -> Iterator[str]:
    """A fake streaming model: yields the answer word by word."""
    context = messages[-1]["content"]
    for word in f"Here is what I found: {context}".split(" "):
        yield word + " "


@gs.span(type="workflow")
async def gather_facts() -> list[str]:
    return list(await asyncio.gather(check_inventory("headphones"), estimate_shipping("EU")))


@gs.span(type="workflow")
def plan(question: str) -> dict[str, Any]:
    docs = search_kb(question)
    decision = decide([{"role": "system", "content": "You are a support agent."},
                       {"role": "user", "content": question}])
    return {"docs": docs, "action": decision["choices"][0]["message"]["content"]}


# -- the agent -----------------------------------------------------------------------------
LAST_SESSION: dict[str, gs.SessionHandle | None] = {}


@gs.session("support-turn", external_id=lambda user, question: user,
            metadata=lambda user, question: {"channel": "chat", "user": user})
@gs.trace
def handle_turn(user: str, question: str) -> str:
    LAST_SESSION[user] = gs.current_session()
    steps = plan(question)
    facts: list[str] = [doc["content"] for doc in steps["docs"]]
    if steps["action"].startswith("lookup_order:"):
        order_id = steps["action"].split(":", 1)[1]
        with gs.ContextExecutor(max_workers=2) as pool:
            try:
                facts.append(pool.submit(lookup_order, order_id).result())
            except OrderNotFound as exc:
                facts.append(f"I could not find that order ({exc}).")
    if "warranty" in question or "shipping" in question:
        facts.extend(asyncio.run(gather_facts()))
    answer = "".join(stream_answer([{"role": "user", "content": " ".join(facts)}]))
    return answer.strip()


def main() -> int:
    for turn in range(3):
        for user, questions in CONVERSATIONS.items():
            reply = handle_turn(user, questions[turn])
            print(f"[{user}] {questions[turn]}\n    -> {reply[:90]}")
    result = gs.flush(timeout=10)
    print(f"\nflush: sent={result.sent} failed={result.failed} pending={result.pending}\n")
    store = os.environ.get("GALILEO_SESSIONS_STORE", ".galileo_sessions/store.db")
    cli.main(["sessions", "--store", store, "--limit", "12"])
    last = gs.stats()
    print(f"\nstats: {last}\n")
    bob = LAST_SESSION.get("bob")
    if bob is not None and bob.id is not None:
        cli.main(["show", bob.id, "--store", store])
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
