"""qctl: one command line for Redis, RabbitMQ and Kafka queues."""

__version__ = "0.1.0"
