"""JM314: BERT special tokens ([SEP], [CLS], token_type_ids) in code that tokenizes with a Jina v2/v3 model.

v2's tokenizer is BERT's (WordPiece: [CLS] ... [SEP], token_type_ids); v3's is XLM-RoBERTa's (SentencePiece:
<s> ... </s>, no token_type_ids). Late-chunking code written for v2 often looks tokens up by their text
(`tokenizer.convert_tokens_to_ids('[SEP]')`) or reads `inputs['token_type_ids']`: with v3's tokenizer the
first silently gives the unknown token's id (sentence spans break without an error), the second a KeyError.
The literal's line must change with the model, and it stays wrong after `apply` renamed the id to v3, so
the rule fires for a v3 tokenizer too (never a false zero).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from jmigrate.models import V3
from jmigrate.rules._calls import flow
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import PyModule, call_name, kwarg, last_part
from jmigrate.scan.text import model_matches

# BERT token -> (XLM-RoBERTa token, the tokenizer attribute that works for both)
_TOKENS = {
    "[CLS]": ("<s>", "tokenizer.cls_token / cls_token_id"),
    "[SEP]": ("</s>", "tokenizer.sep_token / sep_token_id"),
    "[PAD]": ("<pad>", "tokenizer.pad_token / pad_token_id"),
    "[MASK]": ("<mask>", "tokenizer.mask_token / mask_token_id"),
    "[UNK]": ("<unk>", "tokenizer.unk_token / unk_token_id"),
}
_LOADERS = {"from_pretrained", "SentenceTransformer"}
_MODEL_KWARGS = ("model_name", "model", "model_id", "model_name_or_path", "pretrained_model_name_or_path")


@rule(
    code="JM314",
    name="bert-special-tokens-with-jina-tokenizer",
    summary="BERT special token ([SEP], [CLS]) or token_type_ids used with a Jina v2/v3 tokenizer",
    explanation="v2's tokenizer is BERT's ([CLS] ... [SEP], token_type_ids); v3's is XLM-RoBERTa's (<s> ... "
    "</s>, no token_type_ids). Looking a BERT token up by its text with v3 silently returns the unknown "
    "token's id (late-chunking spans break without an error), and reading token_type_ids fails. Reported "
    "for v3 too, since the literal stays wrong after the model id is renamed.",
    example="sep_id = tokenizer.convert_tokens_to_ids('[SEP]')  # tokenizer of jina-embeddings-v2-base-en",
    fix="None automatic: use the tokenizer's own attributes (tokenizer.sep_token_id, cls_token_id, ...) "
    "that hold the right token for either model, and do not rely on token_type_ids.",
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    text = ctx.src.text
    if mod is None or not any(t in text for t in (*_TOKENS, "token_type_ids")):
        return
    model = _jina_tokenizer(ctx, mod)
    if model is None:
        return
    for node in mod.of_type(ast.Constant):
        if not isinstance(node.value, str):
            continue
        value = node.value
        if value == "token_type_ids":
            yield ctx.finding(
                *mod.span(node),
                f"token_type_ids read from the tokenizer of {model}: v3's XLM-RoBERTa tokenizer has none",
                "Do not rely on token_type_ids (v3's tokenizer and ONNX export take input_ids and "
                "attention_mask only)",
                Applicability.MANUAL,
            )
            continue
        for token, (xlmr, attr) in _TOKENS.items():
            if token in value:
                yield ctx.finding(
                    *mod.span(node),
                    f"BERT token {token} used with the tokenizer of {model}: v3's XLM-RoBERTa tokenizer "
                    f"calls it {xlmr}, and looking up {token} there gives the unknown token",
                    f"Use {attr} instead of the literal",
                    Applicability.MANUAL,
                )
                break


def _jina_tokenizer(ctx: FileContext, mod: PyModule) -> str | None:
    """The Jina v1/v2 (replaced) or v3 model a tokenizer/model loader of this module loads, if any."""
    f = flow(ctx, mod)
    for call in mod.calls:
        if last_part(call_name(call)) not in _LOADERS:
            continue
        kw = kwarg(call, *_MODEL_KWARGS)
        node = kw.value if kw is not None else (call.args[0] if call.args else None)
        if node is None:
            continue
        for value in sorted(f.values(node)[0]):
            if value.rsplit("/", 1)[-1].split("@", 1)[0] == V3:
                return V3
            for m in model_matches(value):
                if m.model.replacement is not None and m.model.generation == "v2":
                    return m.model.name
    return None
