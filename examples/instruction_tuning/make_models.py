r"""Tiny random causal LMs for the instruction-tuning example: a base and an instruct family.

    .venv/bin/python examples/instruction_tuning/make_models.py results/instruction_tuning_models

Writes four Hugging Face folders (``save_pretrained``: ``config.json``, ``model.safetensors``,
``tokenizer.json``, ...), loadable offline with ``from_pretrained(folder, local_files_only=True)``:

- ``base_small``, ``base_large``: GPT-2 architecture (``GPT2LMHeadModel``) with random weights
  (seeded; normal with std :data:`INIT_RANGE` = 0.3 instead of GPT-2's 0.02, see there), 3 blocks
  of width 32 and 4 blocks of width 64.
- ``instruct_small``, ``instruct_large``: a copy of the base model of the same size, then
  **actually fine-tuned** for a few seconds (Adam, next-token loss on every token) on the
  instruction/response pairs of :data:`INSTRUCTION_PAIRS`, formatted as
  ``instruction : <text> response : <text> [EOS]``. This is the controlled difference between
  the families: same architecture, same initial weights, same tokenizer, plus instruction tuning.

Nothing is downloaded: the tokenizer is a word-level vocabulary (``tokenizers.models.WordLevel``,
whitespace/punctuation pre-tokenizer) built from the example's sentences and instruction pairs,
wrapped as a ``PreTrainedTokenizerFast`` and saved in each folder. Everything runs on CPU in a
few seconds and is deterministic for a given seed.

The sentences shown to the simulated subjects (:data:`SENTENCES`) live here too so that
``make_dataset.py`` and the vocabulary use the same text.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

#: The 48 stimulus sentences (one ``.txt`` file each in the BIDS dataset's stimuli/).
SENTENCES = (
    "The baker wakes before dawn to bake fresh bread.",
    "A small boat drifted slowly across the quiet lake.",
    "The children built a tall castle out of sand.",
    "My grandmother keeps her letters in a wooden box.",
    "The train to the city was late again this morning.",
    "A cold wind blew the last leaves from the trees.",
    "The doctor listened carefully to the old man's heart.",
    "We planted tomatoes and beans in the garden last spring.",
    "The musician tuned her violin before the concert began.",
    "A stray dog followed us all the way home.",
    "The library closes early on Sundays during the summer.",
    "He spilled hot coffee on his new white shirt.",
    "The farmer sold apples and honey at the market.",
    "Thunder rolled over the hills as the storm approached.",
    "The students whispered while the teacher wrote on the board.",
    "A bright red kite floated high above the beach.",
    "The chef tasted the soup and added more salt.",
    "Our neighbours painted their front door bright yellow.",
    "The old bridge was closed for repairs all winter.",
    "She found a silver ring buried in the sand.",
    "The pilot announced that the flight would land soon.",
    "A family of ducks crossed the road in a line.",
    "The museum opened a new room of ancient coins.",
    "He forgot his umbrella and walked home in the rain.",
    "The nurse brought the patient a glass of water.",
    "Snow covered the mountain villages for three months.",
    "The carpenter measured the wood twice before cutting it.",
    "A young fox watched the hens from behind the fence.",
    "The orchestra played a slow waltz at the wedding.",
    "My brother repaired the broken chair with glue.",
    "The market was crowded with people buying fish.",
    "A lighthouse guided the ships through the dark night.",
    "The gardener trimmed the roses along the stone wall.",
    "The little girl lost her first tooth at school.",
    "Farmers hoped for rain after the long dry summer.",
    "The painter mixed blue and white to paint the sky.",
    "A loud alarm woke the whole building at midnight.",
    "The waiter carried three plates of pasta to the table.",
    "We watched the sun set behind the distant hills.",
    "The police officer helped the lost child find her parents.",
    "Bees carried pollen from flower to flower all afternoon.",
    "The river flooded the fields after the heavy storm.",
    "Her uncle told funny stories about his time at sea.",
    "The team celebrated their victory with a big dinner.",
    "A cat slept in the warm sun on the window sill.",
    "The mechanic changed the oil and checked the tyres.",
    "The old clock in the hall stopped at noon.",
    "Fresh snow made the park look clean and quiet.",
)

#: Instruction/response pairs of the instruct models' brief fine-tune.
INSTRUCTION_PAIRS = (
    ("Describe what a baker does.", "A baker makes bread and cakes early in the morning."),
    ("Name an animal that lives on a farm.", "A hen lives on a farm."),
    ("Say what happens in a storm.", "Thunder rolls and heavy rain falls."),
    ("Explain why we need water.", "People need water to stay alive and healthy."),
    ("Describe the sea at night.", "The sea is dark and quiet at night."),
    ("Tell me what a doctor does.", "A doctor listens to the patient and helps them feel better."),
    ("Give a word for a small boat.", "A small boat is a canoe."),
    ("Describe a garden in spring.", "In spring the garden is full of flowers and bees."),
    ("Say where books are kept.", "Books are kept in a library."),
    ("Explain what a lighthouse is for.", "A lighthouse guides ships through the night."),
    ("Name a musical instrument.", "The violin is a musical instrument."),
    ("Describe the weather in winter.", "Winter is cold and snow covers the hills."),
    ("Tell me what a chef cooks.", "A chef cooks soup, fish and pasta."),
    ("Say what children do at the beach.", "Children build castles out of sand."),
    ("Explain what a mechanic does.", "A mechanic repairs cars and checks the tyres."),
    ("Describe a market.", "A market is crowded with people buying food."),
)

#: The two families x two sizes: name -> GPT-2 configuration overrides.
SIZES = {
    "small": {"n_layer": 3, "n_embd": 32, "n_head": 2},
    "large": {"n_layer": 4, "n_embd": 64, "n_head": 4},
}
SPECIAL_TOKENS = ("[UNK]", "[PAD]", "[EOS]")
TOKEN_PATTERN = r"\w+|[^\w\s]+"
#: Standard deviation of the random initial weights. GPT-2's own 0.02 leaves the blocks' updates
#: small next to the token embeddings, so every layer's pooled states are nearly the same; 0.3
#: gives each block a visible contribution (layers that an analysis can tell apart).
INIT_RANGE = 0.3


def instruction_text(instruction: str, response: str) -> str:
    """One fine-tuning example: ``instruction : <text> response : <text>``."""
    return f"instruction : {instruction} response : {response}"


def vocabulary() -> dict[str, int]:
    """Word-level vocabulary (lower-cased words and punctuation) of sentences and pairs.

    Returns
    -------
    vocab : dict of str to int
        Token -> id; the special tokens first, then the words in sorted order.
    """
    texts = list(SENTENCES) + [instruction_text(i, r) for i, r in INSTRUCTION_PAIRS]
    words = sorted({w for t in texts for w in re.findall(TOKEN_PATTERN, t.lower())})
    return {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *words])}


def build_tokenizer():
    """A word-level fast tokenizer that needs no download.

    Returns
    -------
    tokenizer : transformers.PreTrainedTokenizerFast
        Lower-cases, splits on whitespace and punctuation, maps unknown words to ``[UNK]``;
        ``[PAD]`` pads, ``[EOS]`` ends the fine-tuning examples. No special token is added to
        the stimuli (the last token of a sentence is its final punctuation mark).
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel(vocab=vocabulary(), unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]",
        model_max_length=128,
    )


def base_model(size: str, *, seed: int):
    """A randomly initialised GPT-2 causal LM of one size (weights std :data:`INIT_RANGE`).

    Parameters
    ----------
    size : str
        A key of :data:`SIZES`.
    seed : int
        torch seed of the initialisation.

    Returns
    -------
    model : transformers.GPT2LMHeadModel
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    vocab = vocabulary()
    config = GPT2Config(
        vocab_size=len(vocab), n_positions=128, **SIZES[size],
        bos_token_id=vocab["[EOS]"], eos_token_id=vocab["[EOS]"], pad_token_id=vocab["[PAD]"],
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=INIT_RANGE,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()


def instruction_tune(model, tokenizer, *, steps: int = 60, lr: float = 3e-3, seed: int = 0):
    """Fine-tune a copy of ``model`` on :data:`INSTRUCTION_PAIRS` (next-token loss).

    Parameters
    ----------
    model : transformers.GPT2LMHeadModel
        The base model (left unchanged).
    tokenizer : transformers.PreTrainedTokenizerFast
    steps : int
        Adam steps, each on the whole set of pairs (one batch, right-padded; padding is
        excluded from the loss).
    lr : float
        Adam learning rate.
    seed : int
        torch seed.

    Returns
    -------
    tuned : transformers.GPT2LMHeadModel
        The fine-tuned copy, in eval mode.
    losses : list of float
        Training loss before each step.
    """
    import copy

    import torch

    torch.manual_seed(seed)
    tuned = copy.deepcopy(model).train()
    texts = [instruction_text(i, r) + " [EOS]" for i, r in INSTRUCTION_PAIRS]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimiser = torch.optim.Adam(tuned.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = tuned(**batch, labels=labels).loss
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return tuned.eval(), losses


def make_models(outdir: str | Path, *, seed: int = 0, steps: int = 60, lr: float = 3e-3) -> dict:
    """Write ``base_{small,large}`` and ``instruct_{small,large}`` under ``outdir``.

    Parameters
    ----------
    outdir : str or Path
        Destination folder (created); one subfolder per model.
    seed : int
        Seed of the base models' initialisation (``seed + i`` for size ``i``) and of the tuning.
    steps, lr : int, float
        Fine-tuning of the instruct models (:func:`instruction_tune`).

    Returns
    -------
    info : dict
        Model name -> folder, configuration, and for instruct models the fine-tuning losses;
        also written to ``outdir/models.json``.
    """
    import torch

    torch.set_num_threads(1)  # deterministic and polite on shared machines
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    info = {}
    for i, size in enumerate(SIZES):
        base = base_model(size, seed=seed + i)
        tuned, losses = instruction_tune(base, tokenizer, steps=steps, lr=lr, seed=seed)
        for family, model in (("base", base), ("instruct", tuned)):
            name = f"{family}_{size}"
            folder = outdir / name
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            info[name] = {"folder": str(folder), "family": family, "size": size,
                          "config": dict(SIZES[size])}
            if family == "instruct":
                info[name]["tuning"] = {"steps": steps, "lr": lr, "first_loss": losses[0],
                                        "last_loss": losses[-1]}
            logger.info("wrote %s", folder)
    (outdir / "models.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> None:
    """Command line: write the four models."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", help="folder for the four model folders")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    info = make_models(args.outdir, seed=args.seed)
    for name, entry in info.items():
        tuning = entry.get("tuning")
        extra = (f"; tuned {tuning['first_loss']:.2f} -> {tuning['last_loss']:.2f}"
                 if tuning else "")
        print(f"{name}: {entry['folder']}{extra}")


if __name__ == "__main__":
    main()
