"""A Segment-compatible HTTP endpoint for product usage.

Segment's client libraries, pointed at the hub with `host=`, send `identify`,
`track`, `page` and `screen` messages to `/v1/batch` (or one message to
`/v1/<type>`), authenticated by a source's write key. Tracked messages become
activity events of the member they name; messages naming no member are held
for review.
"""
