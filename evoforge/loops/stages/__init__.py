"""The stages of a round, one module each (or one per small group), in the order they run:

plan -> generate -> critique -> expand <-> judge -> verify -> pairs -> train -> sync -> evaluate
-> promote; ``baseline`` (in evaluate.py) runs once before the first plan.
"""
