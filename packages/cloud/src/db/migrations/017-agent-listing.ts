import { type Kysely, type Migration, sql } from 'kysely';
import { dialectOf } from '../database.js';

/**
 * The agent listing pages through the agents table in (status, id) order, so one page reads one index range.
 * An agent is listed once the cloud knows of it: it connected, or a task waits for it in the offline queue
 * (a project naming an agent that never connected). The database adds a row for the latter with every queue
 * write, as it keeps `task_totals`, so every writer keeps the listing complete.
 */
export const agentListing: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.createIndex('agents_status_id_idx').on('agents').columns(['status', 'id']).execute();
    await sql`
      INSERT INTO agents (id, status, created_at)
      SELECT q.agent_id, 'offline', min(q.enqueued_at) FROM offline_queue q
      WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = q.agent_id)
      GROUP BY q.agent_id`.execute(db);
    if (dialectOf(db) === 'sqlite') {
      // One writer at a time: NOT EXISTS cannot race here.
      const known = `INSERT INTO agents (id, status, created_at)
        SELECT NEW.agent_id, 'offline', NEW.enqueued_at
        WHERE NOT EXISTS (SELECT 1 FROM agents WHERE id = NEW.agent_id);`;
      await sql
        .raw(`CREATE TRIGGER offline_queue_agent_insert AFTER INSERT ON offline_queue BEGIN ${known} END`)
        .execute(db);
      await sql
        .raw(
          `CREATE TRIGGER offline_queue_agent_update AFTER UPDATE OF agent_id ON offline_queue BEGIN ${known} END`,
        )
        .execute(db);
      return;
    }
    await sql`
      CREATE FUNCTION offline_queue_agent_known() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO agents (id, status, created_at) VALUES (NEW.agent_id, 'offline', NEW.enqueued_at)
        ON CONFLICT (id) DO NOTHING;
        RETURN NULL;
      END $$`.execute(db);
    await sql`
      CREATE TRIGGER offline_queue_agent_known AFTER INSERT OR UPDATE OF agent_id ON offline_queue
      FOR EACH ROW EXECUTE FUNCTION offline_queue_agent_known()`.execute(db);
  },

  async down(db: Kysely<unknown>) {
    if (dialectOf(db) === 'sqlite') {
      await sql`DROP TRIGGER IF EXISTS offline_queue_agent_insert`.execute(db);
      await sql`DROP TRIGGER IF EXISTS offline_queue_agent_update`.execute(db);
    } else {
      await sql`DROP TRIGGER IF EXISTS offline_queue_agent_known ON offline_queue`.execute(db);
      await sql`DROP FUNCTION IF EXISTS offline_queue_agent_known()`.execute(db);
    }
    await db.schema.dropIndex('agents_status_id_idx').ifExists().execute();
  },
};
