from django.db import migrations

# PostgreSQL keeps the full-text vectors current on every insert and update,
# bulk loads included, so no code path can forget them. Titles weigh more
# than bodies in the ranking.
FORWARD = """
CREATE FUNCTION community_topic_search_vector() RETURNS trigger AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(NEW.body, '')), 'B');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER community_topic_search_vector_update
BEFORE INSERT OR UPDATE OF title, body ON community_topic
FOR EACH ROW EXECUTE FUNCTION community_topic_search_vector();

CREATE FUNCTION community_reply_search_vector() RETURNS trigger AS $$
BEGIN
    NEW.search_vector := to_tsvector('english', coalesce(NEW.body, ''));
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER community_reply_search_vector_update
BEFORE INSERT OR UPDATE OF body ON community_reply
FOR EACH ROW EXECUTE FUNCTION community_reply_search_vector();

UPDATE community_topic SET title = title;
UPDATE community_reply SET body = body;
"""

BACKWARD = """
DROP TRIGGER IF EXISTS community_topic_search_vector_update ON community_topic;
DROP FUNCTION IF EXISTS community_topic_search_vector();
DROP TRIGGER IF EXISTS community_reply_search_vector_update ON community_reply;
DROP FUNCTION IF EXISTS community_reply_search_vector();
"""


class Migration(migrations.Migration):
    dependencies = [("community", "0002_forum")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
