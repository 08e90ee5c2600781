"""Signal receivers of the portal app; each calls one service."""

from apps.portal.models import CaseAttachment
from apps.portal.services.case_files import delete_attachment_file


def delete_case_attachment_file(
    sender, instance: CaseAttachment, using: str, **kwargs
) -> None:
    """Delete the stored file of a deleted case attachment, after commit.

    Django sends post_delete for each row, also when a case, a message or a
    queryset delete removes attachments by cascade.
    """
    delete_attachment_file(attachment=instance, using=using)
