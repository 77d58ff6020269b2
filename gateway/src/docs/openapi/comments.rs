//! Descriptions from the protos' own comments.

use prost_reflect::FieldDescriptor;

pub(super) fn field_comment(field: &FieldDescriptor) -> String {
    comment(field.parent_file(), field.path())
}

/// The leading comment of the element at `path` in `file`, as one paragraph
/// per blank-line-separated block.
pub(super) fn comment(file: prost_reflect::FileDescriptor, path: &[i32]) -> String {
    file.file_descriptor_proto()
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == path))
        .and_then(|l| l.leading_comments.as_deref())
        .map(|text| {
            text.split("\n\n")
                .map(|para| {
                    para.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n")
        })
        .unwrap_or_default()
}
