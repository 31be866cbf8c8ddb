"""Amazon SQS and SQS-compatible servers (ElasticMQ), through botocore (the optional extra ``qctl[sqs]``)."""

from qctl.adapter import About

ABOUT = About(
    backend="sqs",
    urls=(
        ("sqs://[REGION], sqs+http://host:port, sqs+https://host:port",
         "Amazon SQS (sqs://eu-west-1), or an SQS-compatible endpoint. Credentials from the standard AWS chain "
         "(environment, shared files, the profile's aws_profile, SSO, instance roles); QUEUE is the queue name "
         "or its URL."),
    ),
    extra="qctl[sqs]",
)
