"""The round's algorithm: its LangGraph graph, state and routing, the node wrapper, the runtime a
stage gets, the role servers, the kinds of sample (answers or trajectories, ``samples.py``) and the
stages (``stages/``). Uses storage, never the driver."""
