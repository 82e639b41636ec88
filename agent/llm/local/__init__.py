"""The local decoding backend: a causal LM on this machine's GPU (or CPU), sampling under a grammar.

- ``engine``: loading (``from_pretrained``), the continuously refilled batch, shared prefill;
- ``decoder``: the forward pass over a static KV cache, and its CUDA graphs;
- ``masks``: the grammar engines (xgrammar, llguidance) and batch mask filling on CPU threads;
- ``sampling``: temperature, top-p, counter-based seeds, stop strings, token and time budgets;
- ``artifacts``: samples checked by their grammar's validator (cut-off and invalid ones
  reported), staged grammars drawn in two phases;
- ``chat_model``: the LangChain adapter for ``local:`` model specs: each call samples under the
  grammar its caller gives (``output``); ``cli``: the engine's half of ``formalist sample``;
- ``qwen_vocab`` and ``testing``: the real Qwen vocabulary and tiny random models for tests.

Grammars are values the caller builds (``agent.llm.grammar``; each formal language's own in
``formalizers/<language>/grammar.py``): nothing here knows a formal language. The engine path never
imports LangChain, so it runs on a bare GPU machine. Nothing heavy is imported
here: ``import agent.llm.local`` stays light.
"""
