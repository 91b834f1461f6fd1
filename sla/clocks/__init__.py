"""SLA clocks: derived from the lead events (`replay`), kept by the outbox reaction
(`services.clock_reaction`), marked and escalated by the flagging job (`flagging`)."""
