"""自動生成ファイル: PDFs generated from records by editable document templates (請求書, 納品書 …).

The routes' blueprint (routes.bp) is registered under the databases blueprint by record_routes.py.
"""
