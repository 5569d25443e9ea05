//! Error bodies of the Exchange Online admin API, shaped like the captures in
//! `shared/fixtures/exo-real` (C1–C5).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
#[cfg(test)]
use serde_json::Value;

pub const ODATA_EXCEPTION: &str = "Microsoft.Exchange.Admin.OData.Core.ODataServiceException";

/// The service's stack trace for InvokeCommand failures (fixtures C3, C4).
pub const INVOKE_STACKTRACE: &str = "   at Microsoft.Exchange.AdminApi.CommandInvocation.CommandInvocation.InvokeCommand(QueryContext queryContext, CmdletInvokeInputType cmdletInvokeInputType)\r\n   at Microsoft.Exchange.Admin.OData.Core.PathSegmentToExpressionTranslator.Translate(OperationImportSegment segment)\r\n   at Microsoft.Exchange.Admin.OData.Core.QueryContext.ResolveQuery(ODataContext context, Int32 level)\r\n   at Microsoft.Exchange.Admin.OData.Core.Handlers.OperationHandler.Process(IODataRequestMessage requestMessage, IODataResponseMessage responseMessage)\r\n   at Microsoft.Exchange.Admin.OData.Core.Handlers.RequestHandler.Process(Stream requestStream)";

const DIRECT_INVOKE: &str =
    "Microsoft.Exchange.Management.PSDirectInvoke.DirectInvokeCmdletExecutionException";
const DIRECT_INVOKE_STACK: &str = "   at Microsoft.Exchange.Management.PSDirectInvoke.PSDirectInvokeCmdletFactory.InvokeCmdletInternal[TCmdlet,TResult](Func`1 createCmdlet, Action`1 setParameterDelegate, List`1 captureAdditionalIO, List`1 directInvokeExceptions, Boolean shouldAllowProactiveProxyToReturnRoutingHint)";

/// A failure of an InvokeCommand request, as the service reports it.
#[derive(Debug, Clone)]
pub enum InvokeError {
    /// C2: a parameter the cmdlet does not have (or a parameter-set conflict).
    ParameterSet { detail: String },
    /// C1: a value that cannot be converted to the parameter's type.
    Transformation {
        parameter: String,
        value: String,
        target_type: String,
        reason: String,
    },
    /// A cmdlet name the endpoint does not know.
    UnknownCmdlet(String),
    /// A request body that is not a CmdletInput.
    BadBody(String),
    /// An invalid -Filter.
    BadFilter {
        filter: String,
        message: String,
        position: usize,
    },
    /// C3: an expired or invalid skiptoken.
    ExpiredPagination,
    /// C4/C5: -Identity matches nothing.
    NotFound(String),
    /// A transient back-end exception (fault injection) under an HTTP status of the fault's
    /// choosing: "Error executing cmdlet" with `details[0].message` naming the exception.
    Transient { exception: String, status: u16 },
    /// A cmdlet that ran and refused (e.g. an address in use): details carry
    /// `<id>|<exception type>|<message>`.
    Cmdlet {
        error_id: &'static str,
        exception: &'static str,
        message: String,
    },
}

impl InvokeError {
    pub fn status(&self) -> StatusCode {
        match self {
            InvokeError::NotFound(_) => StatusCode::NOT_FOUND,
            InvokeError::Transient { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body. Key order within objects follows the captures because it is written
    /// by hand below (serde_json maps are only used for leaf objects).
    pub fn body(&self, server: &str) -> String {
        let invalid = |details: Option<(&str, String)>,
                       exception_type: &str,
                       message: &str,
                       warnings: bool,
                       stack: &str| {
            let mut s = String::from(
                "{\"error\":{\"code\":\"BadRequest\",\"message\":\"Invalid Operation\"",
            );
            if let Some((ty, msg)) = details {
                s.push_str(&format!(
                    ",\"details\":[{{\"code\":\"Client\",\"target\":\"\",\"message\":{}}}]",
                    js(&format!("|{ty}|{msg}"))
                ));
            }
            s.push_str(&format!(
                ",\"innererror\":{{\"message\":\"Invalid Operation\",\"type\":\"{ODATA_EXCEPTION}\",\"stacktrace\":{},\"internalexception\":{{\"message\":{},\"type\":{},\"stacktrace\":\"\"}}}}",
                js(stack),
                js(message),
                js(exception_type)
            ));
            if warnings {
                s.push_str(",\"adminapi.warnings@odata.type\":\"#Collection(String)\",\"@adminapi.warnings\":[]");
            }
            s.push_str("}}");
            s
        };
        match self {
            InvokeError::ParameterSet { detail } => {
                let ty =
                    "Microsoft.Exchange.AdminApi.CommandInvocation.AmbiguousParameterSetException";
                let msg = format!(
                    "Parameter set cannot be resolved using the specified named parameters. {detail}"
                );
                invalid(Some((ty, msg.clone())), ty, &msg, false, "")
            }
            InvokeError::Transformation {
                parameter,
                value,
                target_type,
                reason,
            } => {
                let msg = format!(
                    "Cannot process argument transformation on parameter '{parameter}'. Cannot convert value \"{value}\" to type \"{target_type}\". Error: \"{reason}\""
                );
                invalid(
                    None,
                    "Microsoft.Exchange.AdminApi.CommandInvocation.ParameterTransformationException",
                    &msg,
                    true,
                    "",
                )
            }
            InvokeError::UnknownCmdlet(name) => {
                let ty = "System.Management.Automation.CommandNotFoundException";
                let msg = format!(
                    "The term '{name}' is not recognized as a name of a cmdlet, function, script file, or executable program."
                );
                invalid(Some((ty, msg.clone())), ty, &msg, false, "")
            }
            InvokeError::BadBody(why) => invalid(
                None,
                "Microsoft.OData.ODataException",
                &format!("The request body is not a valid CmdletInput: {why}"),
                false,
                "",
            ),
            InvokeError::BadFilter {
                filter,
                message,
                position,
            } => {
                let ty = "System.Management.Automation.ParameterBindingException";
                let msg = format!(
                    "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"Invalid filter syntax. For a description of the filter parameter syntax see the command help.\r\n\"{filter}\" at position {position}.\" ({message})"
                );
                invalid(Some((ty, msg.clone())), ty, &msg, true, "")
            }
            InvokeError::ExpiredPagination => invalid(
                None,
                "System.Exception",
                "Expired or Invalid pagination request. Default Expiry time is 00:30:00",
                false,
                INVOKE_STACKTRACE,
            ),
            InvokeError::NotFound(id) => executing_error(
                "NotFound",
                "Ex6F9304",
                "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
                &format!(
                    "The operation couldn't be performed because object '{id}' couldn't be found on '{server}'."
                ),
            ),
            InvokeError::Transient { exception, status } => {
                let code = match status {
                    500 => "InternalServerError",
                    503 => "ServiceUnavailable",
                    _ => "BadRequest",
                };
                executing_error(
                    code,
                    "Ex9F2C41",
                    exception,
                    &format!(
                        "The operation couldn't be performed because of a transient back-end condition ({exception}). Please try again later."
                    ),
                )
            }
            InvokeError::Cmdlet {
                error_id,
                exception,
                message,
            } => executing_error("BadRequest", error_id, exception, message),
        }
    }

    pub fn into_response(self, server: &str) -> Response {
        (
            self.status(),
            [(axum::http::header::CONTENT_TYPE, crate::invoke::ODATA_JSON)],
            self.body(server),
        )
            .into_response()
    }
}

/// "Error executing cmdlet" (C4): details `<id>|<type>|<message>`, the direct-invoke inner
/// exception, and the warnings pair inside `error`.
fn executing_error(code: &str, error_id: &str, exception: &str, message: &str) -> String {
    // Key order of the capture: code, message, details, innererror, warnings.
    let mut s = format!(
        "{{\"error\":{{\"code\":{},\"message\":\"Error executing cmdlet\",\"details\":[{{\"code\":\"Client\",\"target\":\"\",\"message\":{}}}]",
        js(code),
        js(&format!("{error_id}|{exception}|{message}"))
    );
    s.push_str(&format!(
        ",\"innererror\":{{\"message\":\"Error executing cmdlet\",\"type\":\"{ODATA_EXCEPTION}\",\"stacktrace\":{},\"internalexception\":{{\"message\":{},\"type\":\"{DIRECT_INVOKE}\",\"stacktrace\":{}}}}}",
        js(INVOKE_STACKTRACE),
        js(&format!("Exception of type '{DIRECT_INVOKE}' was thrown.")),
        js(DIRECT_INVOKE_STACK)
    ));
    s.push_str(
        ",\"adminapi.warnings@odata.type\":\"#Collection(String)\",\"@adminapi.warnings\":[]",
    );
    s.push_str("}}");
    s
}

fn js(s: &str) -> String {
    crate::mailbox::json_str(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../exo/tests/fixtures/exo-real/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_expired_pagination_error_is_the_captured_one() {
        let ours: Value = serde_json::from_str(&InvokeError::ExpiredPagination.body("X")).unwrap();
        assert_eq!(
            ours,
            fixture("error_400_expired-pagination_ms-qa-1023619_2022-09-21.json")
        );
    }

    #[test]
    fn the_unknown_parameter_error_is_the_captured_one() {
        let e = InvokeError::ParameterSet {
            detail: "Invalid cmdlet parameters specified. BogusParameter".into(),
        };
        let ours: Value = serde_json::from_str(&e.body("X")).unwrap();
        assert_eq!(ours, fixture("error_400_unknown-parameter_graph2otel.json"));
    }

    #[test]
    fn not_found_has_the_captured_shape() {
        let e =
            InvokeError::NotFound("primarymailboxName_01a1dac7@glebecentre.onmicrosoft.com".into());
        let ours: Value =
            serde_json::from_str(&e.body("YQBPR01A12DC007.CANPR01A012.PROD.OUTLOOK.COM")).unwrap();
        let theirs = fixture("error_notfound_object-not-found_psws-proxy_2023-08-18.json");
        let theirs = &theirs["reconstructed_error_object"];
        let ours = &ours["error"];
        assert_eq!(ours["code"], theirs["code"]);
        assert_eq!(ours["details"], theirs["details"]);
        assert_eq!(ours["innererror"]["type"], theirs["innererror"]["type"]);
        assert_eq!(
            ours["innererror"]["internalexception"]["type"],
            theirs["innererror"]["internalexception"]["type"]
        );
        assert_eq!(ours["@adminapi.warnings"], theirs["@adminapi.warnings"]);
    }
}
