"""Host providers: where a lab's hosts come from."""
