"""Text models: layers from the module tree, token pooling, padding, truncation, MiniLM.

The reference for every pooled vector is an independent path: Hugging Face's own
``output_hidden_states=True`` on each text alone (no padding), pooled with numpy. The MiniLM
sentence embedding is checked against the sentence-transformers package's own ``encode``.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from brainalign.errors import BIDSInputError, ConfigError  # noqa: E402
from brainalign.features import text as T  # noqa: E402

TEXTS = [
    "The cat sat on the mat.",
    "A very long sentence about a tiny dog that ran across the wide green field all day long.",
    "Hello.",
    "Rivers flow into the sea.",
    "Stocks fell sharply on Monday after the central bank raised interest rates.",
]
MINILM = {"source": "huggingface", "weights": "shipped", "architecture": "all-MiniLM-L6-v2"}
SETTINGS = {"batch_size": 3, "device": "cpu", "precision": "float32"}


def _table(texts=TEXTS) -> pd.DataFrame:
    return pd.DataFrame({"stim_id": range(len(texts)),
                         "stim_file": [f"s{i:02d}" for i in range(len(texts))],
                         "path": "n/a", "text": texts})


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Tiny random BERT, GPT-2 and Llama models with MiniLM's tokenizer, saved to folders."""
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2Model,
        LlamaConfig,
        LlamaModel,
    )

    tok = AutoTokenizer.from_pretrained(str(T.text_model_folder(MINILM)), local_files_only=True)
    vocab = tok.vocab_size
    torch.manual_seed(0)
    models = {
        "bert": BertModel(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64)),
        "gpt2": GPT2Model(GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2)),
        "llama": LlamaModel(LlamaConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=2,
                                        intermediate_size=64)),
    }
    root = tmp_path_factory.mktemp("text_models")
    folders = {}
    for name, model in models.items():
        for side in ("right", "left"):
            folder = root / f"{name}_{side}"
            model.save_pretrained(folder)
            tok.padding_side = side
            tok.save_pretrained(folder)
            folders[(name, side)] = folder
    return folders


def _spec(folder, **kw) -> dict:
    return {"source": "huggingface", "weights": str(folder), "pooling": "mean",
            "max_length": 64, "layers": ["embeddings"], **kw}


def _reference(folder, texts, pooling) -> list[np.ndarray]:
    """Per text alone: hidden_states (n_states, n_tokens, hidden), pooled with numpy."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    out = []
    with torch.no_grad():
        for text in texts:
            enc = tok(text, return_tensors="pt")
            hs = np.stack([h[0].numpy() for h in
                           model(**enc, output_hidden_states=True).hidden_states])
            pooled = {"mean": hs.mean(axis=1), "last": hs[:, -1], "first": hs[:, 0]}[pooling]
            out.append(pooled)
    return out


EXPECTED_LAYERS = {
    "bert": ["embeddings", "encoder.layer.0", "encoder.layer.1"],
    "gpt2": ["embeddings", "h.0", "h.1", "ln_f"],
    "llama": ["embeddings", "layers.0", "layers.1", "norm"],
}


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama"])
def test_layers_come_from_the_module_tree(tiny_models, name):
    layers = T.list_text_layers(_spec(tiny_models[(name, "right")]))
    assert [layer for layer, _ in layers] == EXPECTED_LAYERS[name]
    assert all(desc for _, desc in layers)


@pytest.mark.parametrize("name,side", [("bert", "right"), ("gpt2", "right"), ("gpt2", "left"),
                                       ("llama", "left")])
@pytest.mark.parametrize("pooling", ["mean", "last", "first"])
def test_pooling_equals_hidden_states_of_each_text_alone(tiny_models, name, side, pooling):
    folder = tiny_models[(name, side)]
    layers = EXPECTED_LAYERS[name]
    feats = T.extract_text_features(_spec(folder, pooling=pooling), _table(), layers,
                                    settings=SETTINGS)
    ref = np.stack(_reference(folder, TEXTS, pooling))  # (n_texts, n_states, hidden)
    # hidden_states: [embeddings, block 0, ..., block L-2, last block (or final norm)]
    norm = name != "bert"
    blocks = layers[1:-1] if norm else layers[1:]
    index = {"embeddings": 0, **{b: 1 + i for i, b in enumerate(blocks)}}
    if norm:  # the final norm's output replaces the last block's in hidden_states
        del index[blocks[-1]]
        index[layers[-1]] = len(blocks)
    for layer, k in index.items():
        assert feats[layer].dtype == np.float32
        assert feats[layer].shape == (len(TEXTS), 32)
        np.testing.assert_allclose(feats[layer], ref[:, k], atol=2e-5, rtol=1e-4,
                                   err_msg=f"{name} {side} {pooling} {layer}")
    # the last block of a model with a final norm: its output differs from the norm's
    if name != "bert":
        assert not np.allclose(feats[layers[-2]], feats[layers[-1]], atol=1e-3)


@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_in_a_batch_changes_nothing(tiny_models, pooling, side):
    """A short text alone and padded next to a long one gives the same vector."""
    folder = tiny_models[("gpt2", side)]
    spec = _spec(folder, pooling=pooling)
    layers = EXPECTED_LAYERS["gpt2"]
    short, long = TEXTS[2], TEXTS[1]
    alone = T.extract_text_features(spec, _table([short]), layers, settings=SETTINGS)
    batch = T.extract_text_features(spec, _table([long, short]), layers,
                                    settings={**SETTINGS, "batch_size": 2})
    for layer in layers:
        np.testing.assert_allclose(batch[layer][1], alone[layer][0], atol=2e-5, rtol=1e-4)
        # and the padding really was there: the long text differs
        assert not np.allclose(batch[layer][0], alone[layer][0], atol=1e-3)


def test_pool_tokens_against_numpy():
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    h, m = torch.from_numpy(hidden), torch.from_numpy(mask)
    np.testing.assert_allclose(T.pool_tokens(h, m, "mean").numpy(),
                               [hidden[0, :3].mean(0), hidden[1, 2:].mean(0), hidden[2].mean(0)],
                               rtol=1e-6)
    np.testing.assert_array_equal(T.pool_tokens(h, m, "last").numpy(),
                                  [hidden[0, 2], hidden[1, 4], hidden[2, 4]])
    np.testing.assert_array_equal(T.pool_tokens(h, m, "first").numpy(),
                                  [hidden[0, 0], hidden[1, 2], hidden[2, 0]])


def test_truncation_warns_with_the_stimulus_and_keeps_the_first_tokens(tiny_models, caplog):
    folder = tiny_models[("bert", "right")]
    spec = _spec(folder, pooling="mean", max_length=6)
    with caplog.at_level(logging.WARNING, logger="brainalign.features.text"):
        feats = T.extract_text_features(spec, _table(), ["encoder.layer.1"], settings=SETTINGS)
    assert "s01" in caplog.text and "truncated" in caplog.text
    assert "s02 " not in caplog.text  # "Hello." fits
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    with torch.no_grad():
        enc = tok(TEXTS[1], truncation=True, max_length=6, return_tensors="pt")
        hs = model(**enc, output_hidden_states=True).hidden_states[2][0].numpy()
    assert enc["input_ids"].shape[1] == 6
    np.testing.assert_allclose(feats["encoder.layer.1"][1], hs.mean(0), atol=2e-5, rtol=1e-4)


def test_bfloat16_autocast_is_close_to_float32(tiny_models):
    folder = tiny_models[("bert", "right")]
    spec = _spec(folder)
    f32 = T.extract_text_features(spec, _table(), ["encoder.layer.1"], settings=SETTINGS)
    bf16 = T.extract_text_features(spec, _table(), ["encoder.layer.1"],
                                   settings={**SETTINGS, "precision": "bfloat16"})
    assert bf16["encoder.layer.1"].dtype == np.float32
    r = np.corrcoef(f32["encoder.layer.1"].ravel(), bf16["encoder.layer.1"].ravel())[0, 1]
    assert r > 0.99
    assert not np.array_equal(f32["encoder.layer.1"], bf16["encoder.layer.1"])


def test_minilm_mean_pooling_is_the_sentence_embedding():
    """Our mean pooling of MiniLM's last block, L2-normalised = sentence-transformers' encode."""
    st = pytest.importorskip("sentence_transformers")
    spec = {**MINILM, "pooling": "mean", "max_length": 128, "layers": ["encoder.layer.5"]}
    assert T.is_text_model(spec)
    layers = [layer for layer, _ in T.list_text_layers(spec)]
    assert layers == ["embeddings"] + [f"encoder.layer.{i}" for i in range(6)]
    T.check_text_spec("minilm", spec)
    ours = T.extract_text_features(spec, _table(), ["encoder.layer.5"], settings=SETTINGS)
    ours = ours["encoder.layer.5"]
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    model = st.SentenceTransformer(str(T.text_model_folder(MINILM)), device="cpu",
                                   local_files_only=True)
    ref = model.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    assert ours.shape == ref.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_texts_come_from_the_table_or_the_txt_file(tmp_path):
    (tmp_path / "a.txt").write_text("  first text\n", encoding="utf-8")
    table = pd.DataFrame({"stim_file": ["a.txt", "b"], "path": [str(tmp_path / "a.txt"), "n/a"],
                          "text": [np.nan, "second text"]})
    assert T.stimulus_texts(table) == ["first text", "second text"]
    with pytest.raises(BIDSInputError, match="has no text"):
        T.stimulus_texts(pd.DataFrame({"stim_file": ["x.png"], "path": ["/d/x.png"]}))


def test_is_text_model(tiny_models, tmp_path):
    folder = tiny_models[("bert", "right")]
    assert T.is_text_model(_spec(folder))
    assert not T.is_text_model({"source": "torchvision", "weights": "random"})
    assert not T.is_text_model(_spec(tmp_path / "missing"))
    vision = tmp_path / "vision"
    vision.mkdir()
    for f in folder.iterdir():
        (vision / f.name).write_bytes(f.read_bytes())
    (vision / "preprocessor_config.json").write_text("{}")
    assert not T.is_text_model(_spec(vision))
    with pytest.raises(ConfigError, match="image processor"):
        T.check_text_spec("vit", _spec(vision))


def test_check_text_spec_errors(tiny_models, tmp_path):
    folder = tiny_models[("gpt2", "right")]
    T.check_text_spec("ok", _spec(folder, layers=["h.1", "ln_f"]))
    with pytest.raises(ConfigError, match=r"features\.models\.m\.layers.*'h\.7'.*'ln_f'"):
        T.check_text_spec("m", _spec(folder, layers=["h.7"]))
    with pytest.raises(ConfigError, match="no such folder"):
        T.check_text_spec("m", _spec(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="max_length"):
        T.check_text_spec("m", _spec(folder, max_length=5000))
    with pytest.raises(ConfigError, match="all-MiniLM-L6-v2"):
        T.check_text_spec("m", {**MINILM, "architecture": "bert-large", "layers": ["x"]})
    with pytest.raises(ConfigError, match="source huggingface"):
        T.check_text_spec("m", {**_spec(folder), "source": "timm"})
    notok = tmp_path / "notok"
    notok.mkdir()
    (notok / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(ConfigError, match="no tokenizer"):
        T.check_text_spec("m", _spec(notok))


def test_models_must_match_the_stimulus_kind(tiny_models):
    text = _spec(tiny_models[("bert", "right")])
    image = {"source": "registry", "architecture": "efficientnet_lite0", "weights": "shipped"}
    T.check_models_against_stimuli({"a": text}, "text")
    T.check_models_against_stimuli({"b": image}, "image")
    with pytest.raises(ConfigError, match="features.models.a is a text model.*images"):
        T.check_models_against_stimuli({"a": text}, "image")
    with pytest.raises(ConfigError, match="features.models.b is an image model.*texts"):
        T.check_models_against_stimuli({"a": text, "b": image}, "text")
