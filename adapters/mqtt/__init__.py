"""MQTT 3.1.1/5 brokers (mosquitto first), through paho-mqtt 2 (the optional extra ``qctl[mqtt]``)."""

from qctl.adapter import About

ABOUT = About(
    backend="mqtt",
    urls=(
        ("mqtt://[user:pass@]host[:port], mqtts:// (TLS)",
         "MQTT 3.1.1 and 5 brokers. The queue-like things are retained messages under a topic filter and "
         "offline persistent sessions."),
    ),
    extra="qctl[mqtt]",
)
