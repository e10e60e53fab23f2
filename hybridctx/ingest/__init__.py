"""Stage 1, ingest: documents → sentences and their structure → landmarks → an index on disk.

loading files (documents), sentence segmentation, the structure pass (titles, headings,
sessions, speakers, dates), landmarks per encoder, and building or updating an index (indexing).
"""
