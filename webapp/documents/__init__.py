"""自動生成ファイル: PDFs generated from records by editable document templates (請求書, 納品書 …).

The blueprint (routes.bp) is registered by create_app; the field type (fieldtype.AutofileKind) registers itself
in the field-type registry of databases when imported (webapp/models.py imports it with the models).
"""
