import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import { QUEUES } from '../../infra/transport/types.js';

/**
 * Messages in the dead-letter stores: `queue_dead_letters` for the embedded transport, the
 * `<prefix>-<hop>-dlq.fifo` queues (visible plus in-flight) for SQS. A dead letter is not lost
 * (it can be redriven), but a chaos run that produces one has not delivered exactly once either.
 */
export async function deadLetterCount(db: pg.Pool, env: Record<string, string>): Promise<number> {
  if (env.TRANSPORT !== 'sqs') {
    const { rows } = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM queue_dead_letters');
    return Number(rows[0]?.n ?? 0);
  }
  const client = new SQSClient({
    region: env.SQS_REGION ?? 'us-east-1',
    ...(env.SQS_ENDPOINT ? { endpoint: env.SQS_ENDPOINT } : {}),
    // The daemons' credentials when the run names them (fauxqs); else the default chain.
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } }
      : {}),
  });
  try {
    let total = 0;
    for (const hop of QUEUES) {
      const name = `${env.SQS_QUEUE_PREFIX ?? 'auditlog'}-${hop}-dlq.fifo`;
      const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: name }));
      const { Attributes } = await client.send(
        new GetQueueAttributesCommand({
          QueueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      total +=
        Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
        Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    }
    return total;
  } finally {
    client.destroy();
  }
}
