"""Training beside serving: the trainer actor (TRL inside a Ray actor), its settings, the TRL
adapters and the CPU LM head. The round's ``train`` stage calls :func:`actor.train_remote`."""
