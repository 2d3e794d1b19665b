//! ID/password notices (ID・パスワード発行通知書, SPEC §9, §12): `GET …/accounts/{user_id}/notice.pdf`
//! for one account and `POST …/notices` for one PDF with a page per selected account. The rules
//! (who may print, which accounts are printable, the selection limits) live in `policies`; the
//! use case in `service::notices`.

pub mod selection;
pub mod single;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use service::notices::NoticePdf;

/// `application/pdf` as a download. `Cache-Control: no-store` is set on every admin response
/// by the router; it matters most here, where the body holds initial passwords.
fn pdf_response(notice: NoticePdf) -> Response {
    let disposition = format!("attachment; filename=\"{}\"", notice.file_name);
    let mut response = notice.pdf.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
