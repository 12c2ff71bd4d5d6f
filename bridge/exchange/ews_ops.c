#include "ews_ops.h"

#include "../../mapping/ews_item.h"

static const char *const OPEN[] = {
    [EWS_WRITE_CREATE] = "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:SavedItemFolderId>"
                         "<t:DistinguishedFolderId Id=\"calendar\"/></m:SavedItemFolderId><m:Items>",
    [EWS_WRITE_UPDATE] = "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" "
                         "SendMeetingInvitationsOrCancellations=\"SendToNone\"><m:ItemChanges>",
    [EWS_WRITE_DELETE] = "<m:DeleteItem DeleteType=\"MoveToDeletedItems\" "
                         "SendMeetingCancellations=\"SendToNone\"><m:ItemIds>",
};
static const char *const CLOSE[] = {
    [EWS_WRITE_CREATE] = "</m:Items></m:CreateItem>",
    [EWS_WRITE_UPDATE] = "</m:ItemChanges></m:UpdateItem>",
    [EWS_WRITE_DELETE] = "</m:ItemIds></m:DeleteItem>",
};

void ews_ops_open(sbuf *b, ews_write w)
{
    sbuf_cat(b, OPEN[w]);
}

void ews_ops_close(sbuf *b, ews_write w)
{
    sbuf_cat(b, CLOSE[w]);
}

void ews_ops_item_id(sbuf *b, const char *item_id)
{
    sbuf_cat(b, "<t:ItemId Id=\"");
    sbuf_xml(b, item_id);
    sbuf_cat(b, "\"/>");
}

void ews_ops_get_change_key(sbuf *b, const char *item_id)
{
    sbuf_cat(b, "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
                "<m:ItemIds>");
    ews_ops_item_id(b, item_id);
    sbuf_cat(b, "</m:ItemIds></m:GetItem>");
}

static void stamp_uri(sbuf *b, const char *name)
{
    sbuf_printf(b, "<t:ExtendedFieldURI PropertySetId=\"%s\" PropertyName=\"%s\" "
                   "PropertyType=\"String\"/>", EWS_PROPSET_GUID, name);
}

static void find_open(sbuf *b)
{
    sbuf_cat(b, "<m:FindItem Traversal=\"Shallow\"><m:ItemShape><t:BaseShape>IdOnly"
                "</t:BaseShape><t:AdditionalProperties>");
    stamp_uri(b, EWS_PROP_SOURCE);
    stamp_uri(b, EWS_PROP_TAG);
    sbuf_cat(b, "</t:AdditionalProperties></m:ItemShape>");
}

static void find_close(sbuf *b)
{
    sbuf_cat(b, "<m:ParentFolderIds><t:DistinguishedFolderId Id=\"calendar\"/>"
                "</m:ParentFolderIds></m:FindItem>");
}

void ews_ops_find_by_tag(sbuf *b, const char *tag)
{
    find_open(b);
    sbuf_cat(b, "<m:Restriction><t:IsEqualTo>");
    stamp_uri(b, EWS_PROP_TAG);
    sbuf_cat(b, "<t:FieldURIOrConstant><t:Constant Value=\"");
    sbuf_xml(b, tag);
    sbuf_cat(b, "\"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>");
    find_close(b);
}

void ews_ops_find_by_sources(sbuf *b, const char *const *sources, size_t n)
{
    find_open(b);
    sbuf_cat(b, n > 1 ? "<m:Restriction><t:Or>" : "<m:Restriction>");
    for (size_t i = 0; i < n; i++) {
        sbuf_cat(b, "<t:IsEqualTo>");
        stamp_uri(b, EWS_PROP_SOURCE);
        sbuf_cat(b, "<t:FieldURIOrConstant><t:Constant Value=\"");
        sbuf_xml(b, sources[i]);
        sbuf_cat(b, "\"/></t:FieldURIOrConstant></t:IsEqualTo>");
    }
    sbuf_cat(b, n > 1 ? "</t:Or></m:Restriction>" : "</m:Restriction>");
    find_close(b);
}

void ews_ops_find_stamped(sbuf *b)
{
    find_open(b);
    sbuf_cat(b, "<m:Restriction><t:Exists>");
    stamp_uri(b, EWS_PROP_SOURCE);
    sbuf_cat(b, "</t:Exists></m:Restriction>");
    find_close(b);
}

static const char *const STAMPS[] = {"calbridge-source", "calbridge-tag", "calbridge-organizer",
                                     "calbridge-tzid", "calbridge-url", "calbridge-role",
                                     "calbridge-travel"};

void ews_ops_get_items(sbuf *b, const char *const *ids, size_t n)
{
    sbuf_cat(b, "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape>"
                "<t:BodyType>Text</t:BodyType><t:AdditionalProperties>"
                "<t:FieldURI FieldURI=\"item:Body\"/>"
                "<t:FieldURI FieldURI=\"item:Categories\"/>"
                "<t:FieldURI FieldURI=\"calendar:UID\"/>"
                "<t:FieldURI FieldURI=\"calendar:ModifiedOccurrences\"/>"
                "<t:FieldURI FieldURI=\"calendar:DeletedOccurrences\"/>"
                "<t:FieldURI FieldURI=\"calendar:StartTimeZone\"/>");
    for (size_t i = 0; i < sizeof STAMPS / sizeof *STAMPS; i++) stamp_uri(b, STAMPS[i]);
    sbuf_cat(b, "</t:AdditionalProperties></m:ItemShape><m:ItemIds>");
    for (size_t i = 0; i < n; i++) {
        ews_ops_item_id(b, ids[i]);
    }
    sbuf_cat(b, "</m:ItemIds></m:GetItem>");
}

void ews_ops_sync_folder(sbuf *b, const char *sync_state, int max_changes)
{
    sbuf_cat(b, "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
                "<m:SyncFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SyncFolderId>");
    if (sync_state && *sync_state) {
        sbuf_cat(b, "<m:SyncState>");
        sbuf_xml(b, sync_state);
        sbuf_cat(b, "</m:SyncState>");
    }
    sbuf_printf(b, "<m:MaxChangesReturned>%d</m:MaxChangesReturned></m:SyncFolderItems>",
                max_changes);
}

