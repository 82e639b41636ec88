"""The local decoding backend: a causal LM on this machine's GPU (or CPU), sampling under a grammar.

- ``engine``: loading (``from_pretrained``), the continuously refilled batch, shared prefill;
- ``decoder``: the forward pass over a static KV cache, and its CUDA graphs;
- ``masks``: the grammar engines (xgrammar, llguidance) and batch mask filling on CPU threads;
- ``sampling``: temperature, top-p, counter-based seeds, stop strings, token and time budgets;
- ``grammar``: grammars generated for our artifacts (JSON schemas, PDDL per domain, ASP subset);
- ``artifacts``: samples checked by the project's parsers (cut-off and invalid ones reported);
- ``chat_model``: the LangChain adapter for ``local:`` model specs; ``cli``: ``formalist sample``;
- ``qwen_vocab`` and ``testing``: the real Qwen vocabulary and tiny random models for tests.

The engine path never imports LangChain, so it runs on a bare GPU machine. Nothing heavy is imported
here: ``import agent.llm.local`` stays light.
"""
