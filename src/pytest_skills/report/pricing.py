"""Known list prices, for the cost column. Unknown models get no cost, never a guess.

Prices are US dollars per million tokens as published by the providers, checked on
the date below; prompt-cache reads and writes use Anthropic's published multipliers
(and OpenAI's cached-input price). Update the table and the date together.
"""

from __future__ import annotations

from collections.abc import Mapping

PRICES_CHECKED = "2025-11-01"

#: resolved model -> (input, output, cache read, cache write) per million tokens.
PRICES: Mapping[str, tuple[float, float, float, float]] = {
    "anthropic:claude-haiku-4-5": (1.00, 5.00, 0.10, 1.25),
    "anthropic:claude-sonnet-4-5": (3.00, 15.00, 0.30, 3.75),
    "anthropic:claude-opus-4-5": (5.00, 25.00, 0.50, 6.25),
    "openai:gpt-4.1": (2.00, 8.00, 0.50, 2.00),
    "openai:gpt-4.1-mini": (0.40, 1.60, 0.10, 0.40),
    "openai:gpt-4o-mini": (0.15, 0.60, 0.075, 0.15),
}


#: What a provider batch costs against the same calls made live: both Anthropic's
#: Message Batches and OpenAI's Batch API bill half the list price.
BATCH_DISCOUNT = 0.5


def cost_usd(resolved: str, usage: Mapping[str, int], *, batch: bool = False) -> float | None:
    """The list-price cost of one call, or None when the model's price is not known;
    ``batch``: answered by a provider batch, at :data:`BATCH_DISCOUNT` of it."""
    prices = PRICES.get(resolved)
    if prices is None:
        return None
    per_input, per_output, per_read, per_write = prices
    return (
        (
            usage.get("input_tokens", 0) * per_input
            + usage.get("output_tokens", 0) * per_output
            + usage.get("cache_read_tokens", 0) * per_read
            + usage.get("cache_write_tokens", 0) * per_write
        )
        / 1_000_000
        * (BATCH_DISCOUNT if batch else 1.0)
    )
