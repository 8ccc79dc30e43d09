"""The 自動生成ファイル field type: a header field whose PDF the app makes from the record by a document template.

Registered in the field-type registry of databases (databases/fieldtypes.py) like any type; what is special
about it lives here: its settings (the 帳票テンプレート), making the PDF when a record is saved, and how the record
pages and the field's page show it (templates in documents/templates/documents/).
"""

from __future__ import annotations

from wtforms import SelectField

from ..databases.fieldtypes import StoredFileKind, register
from ..databases.operations import DatabaseError
from .document_templates import DEFAULT_TEMPLATE, available_templates, template_key_of


@register
class AutofileKind(StoredFileKind):
    name, label = "autofile", "自動生成ファイル"
    typed = False
    pdf_target = True
    save_order = 100  # after every value the PDF prints
    view_template = "documents/_autofile_value.html"
    form_template = "documents/_autofile_input.html"
    settings_template = "documents/_autofile_settings.html"
    field_page_template = "documents/_autofile_field_page.html"

    def settings_fields(self) -> dict:
        # Choices are the template files found (prepare_settings).
        return {"template": SelectField("帳票テンプレート", choices=[], validate_choice=False)}

    def prepare_settings(self, form, editing) -> None:
        form.template.choices = [(t.key, t.name) for t in available_templates()]
        if not form.is_submitted():
            form.template.data = template_key_of(editing) if editing else DEFAULT_TEMPLATE

    def settings_from(self, form, current: dict) -> dict:
        if form.template.data not in {key for key, _ in form.template.choices}:
            raise DatabaseError("帳票テンプレートを選んでください。", "template")
        return {**current, "template": form.template.data}

    def on_save(self, field, record) -> list[str]:
        from .operations import refresh_document  # operations asks this type which fields are its own

        problem = refresh_document(record, field)
        return [problem] if problem else []
