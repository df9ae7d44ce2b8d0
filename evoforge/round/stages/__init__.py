"""The stages of a round, one module each (or one per small group), in the order they run:

baseline (once, before the first round; in evaluate.py) -> plan -> generate -> verify -> explore
-> critique -> expand <-> select (tree_search.py) -> pairs -> train -> sync -> evaluate -> promote.

Each is declared with ``nodes.stage``: the files it reads and writes, its algorithm and its
summary; the plumbing around it (skip when done, writes, metrics, events, timers) is nodes.py.
"""
