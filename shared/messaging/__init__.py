"""Queues: the sender protocol, Service Bus, the in-process queue."""
