"""Amazon SQS and SQS-compatible servers (ElasticMQ), through botocore (the optional extra ``qctl[sqs]``).

Features
    * ``stats``: ListQueues (paged, ``QueueNamePrefix`` for a glob) and one
      GetQueueAttributes per queue, 16 at a time: depth
      (ApproximateNumberOfMessages), in_flight (...NotVisible), and the extra
      fields ``delayed``, ``max_receive_count`` and ``dead_letter_sources``;
      the dead-letter queue from the RedrivePolicy, with its depth; type
      ``standard`` or ``fifo``; no oldest_age (CloudWatch-only).
    * ``peek``: SQS has no browse.  Up to 10 messages are received with
      VisibilityTimeout 0; more are held for the peek and made visible again
      at its end.  Every receive counts toward a RedrivePolicy's
      maxReceiveCount, so such a queue counts reads and the core refuses to
      peek it (its DLQ, without a policy of its own, peeks fine).
    * ``purge``: PurgeQueue (AWS takes one per queue every 60 s: exit 3 with
      that reason); with ``--backup``/``--where`` the core's DELETE pass.
    * ``redrive`` of a whole standard DLQ to its one source queue: a message
      move task (StartMessageMoveTask, ``--rate`` as
      MaxNumberOfMessagesPerSecond), polled with progress and cancelled on
      Ctrl-C.  Otherwise (``--to``, ``--limit``, ``--where``,
      ``--max-redrives``, FIFO): the core's mover over a reader that receives
      batches of 10 and DeleteMessageBatch-es what SendMessageBatch confirmed;
      on standard queues the next chunk is received while one is sent and
      the batches of a chunk go out in parallel (FIFO: one after another).
    * On a plain-HTTP endpoint (``sqs+http://``) the frequent requests skip
      botocore's machinery (``wire.py``: SQS's JSON protocol, spoken
      directly); HTTPS endpoints (AWS) use botocore for everything.
    * FIFO: group order kept (one batch after another; a message left in
      place holds back the rest of its group), MessageGroupId kept, the
      source message's MessageId as deduplication id.
    * Mapping (``messages.py``): message attributes are headers, system
      attributes properties; bodies SQS cannot carry as text travel base64
      with ``x-qctl-body-encoding: base64``; 10 attributes and the queue's
      MaximumMessageSize are checked before sending.

URL format
    ``sqs://REGION`` (AWS; ``sqs://`` takes the region from the profile or the
    AWS config), ``sqs+http://HOST:PORT`` and ``sqs+https://HOST:PORT`` (a
    compatible server).  ``ACCESS_KEY_ID:SECRET@`` in the URL gives static
    credentials (the secret is masked).  QUEUE is a queue name or its URL.

Options (the profile's ``[profiles.NAME.sqs]`` table, or the URL's query)
    ``region``, ``endpoint_url`` (e.g. a VPC endpoint for ``sqs://``),
    ``aws_profile`` (a profile of the AWS config files), ``session_token``
    (with URL credentials), ``visibility_timeout`` (seconds a pass holds what
    it received, default 60).  ``--timeout`` is each attempt's connect and
    read timeout, with at most three attempts.  Without credentials a
    compatible server gets unsigned requests; AWS is exit 3.
"""

from qctl.adapter import About

ABOUT = About(
    backend="sqs",
    urls=(
        ("sqs://[REGION], sqs+http://host:port, sqs+https://host:port",
         "Amazon SQS (sqs://eu-west-1; sqs:// alone takes the region from the profile or the AWS config), or an "
         "SQS-compatible endpoint (ElasticMQ, LocalStack). Credentials from the standard AWS chain (environment, "
         "shared files, the profile's aws_profile, SSO, instance roles), or KEY:SECRET@ in the URL; the profile's "
         "[profiles.NAME.sqs] table takes region, endpoint_url, aws_profile and visibility_timeout. QUEUE is the "
         "queue's name or URL."),
    ),
    extra="qctl[sqs]",
)
