//! The GraphQL API at `/graphql`: a seaography schema over the entities of all three databases,
//! with depth and complexity limits, and GraphiQL on `GET`.
//!
//! seaography resolvers read *the* `DatabaseConnection` from the request context, but
//! PentaVision has three databases. The rule that keeps this sound is also a security rule of
//! the platform: **one GraphQL operation reads or writes one database**. Before execution,
//! [`GraphqlApi::execute`] parses the operation, finds which database its root fields belong to
//! and attaches that database's connection to the request; an operation that spans two
//! databases is refused with a clear error (send two requests). Relations only exist inside a
//! database, so nested selections never leave it. The relation data loaders are built per
//! database with that database's connection.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use async_graphql::ServerError;
use async_graphql::dynamic::Schema;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use poem::web::{Data, Html};
use poem::{IntoResponse, Response, handler};
use pv_core::config::{DbKind, GraphqlConfig};
use pv_core::db::Databases;
use pv_core::db::faces::{face_embedding, face_identity, face_match, face_privacy_policy};
use pv_core::db::records::{
    camera, camera_mac_change, camera_storage_target, motion_event, motion_zone, recording_gap,
    recording_schedule, rtmp_output, segment, storage_module, storage_module_health_check,
    storage_module_log, storage_module_write_stat, storage_provider, upload_queue,
};
use pv_core::db::users::{
    api_token, audit_event, auth_throttle, blocklist_setting, country_policy, disarm_pin, ip_rule,
    notification_setting, passkey, permission, pin_use, property, recovery_code, role,
    role_permission, session, totp_credential, user, user_property, user_role, webauthn_ceremony,
};
use sea_orm::DatabaseConnection;
use seaography::{Builder, BuilderContext};

use crate::state::AppState;

pub mod guard;
pub mod input;

static CONTEXT: LazyLock<BuilderContext> = LazyLock::new(|| BuilderContext {
    hooks: seaography::LifecycleHooks::new(guard::RbacHooks),
    ..BuilderContext::default()
});

/// Root fields that touch no database.
const META_FIELDS: [&str; 4] = ["__typename", "__schema", "__type", "_ping"];

/// The executable schema plus the map from root field to database.
#[derive(Clone)]
pub struct GraphqlApi {
    schema: Schema,
    roots: HashMap<String, DbKind>,
    dbs: Databases,
}

impl std::fmt::Debug for GraphqlApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphqlApi").field("root_fields", &self.roots.len()).finish()
    }
}

/// Register one database's entities on `builder`, with loaders bound to `conn`, and return the
/// number of query and mutation root fields added.
macro_rules! register_db {
    ($builder:ident, $conn:expr, [$($entity:ident),+ $(,)?]) => {{
        $builder.connection = $conn.clone();
        let q = $builder.queries.len();
        let m = $builder.mutations.len();
        seaography::register_entities!($builder, [$($entity),+]);
        ($builder.queries.len() - q, $builder.mutations.len() - m)
    }};
}

impl GraphqlApi {
    /// Build the schema over `dbs` with the limits in `limits`.
    pub async fn build(dbs: &Databases, limits: &GraphqlConfig) -> crate::Result<Self> {
        let mut builder = Builder::new(&CONTEXT, dbs.users.clone());
        let mut counts: Vec<(DbKind, usize, usize)> = Vec::new();

        let (q, m) = register_db!(
            builder,
            dbs.users,
            [
                api_token,
                audit_event,
                auth_throttle,
                blocklist_setting,
                country_policy,
                disarm_pin,
                ip_rule,
                notification_setting,
                passkey,
                permission,
                pin_use,
                property,
                recovery_code,
                role,
                role_permission,
                session,
                totp_credential,
                user,
                user_property,
                user_role,
                webauthn_ceremony
            ]
        );
        counts.push((DbKind::Users, q, m));
        let (q, m) = register_db!(
            builder,
            dbs.faces,
            [face_identity, face_embedding, face_privacy_policy, face_match]
        );
        counts.push((DbKind::Faces, q, m));
        let (q, m) = register_db!(
            builder,
            dbs.records,
            [
                camera,
                camera_mac_change,
                camera_storage_target,
                motion_event,
                motion_zone,
                recording_gap,
                recording_schedule,
                rtmp_output,
                segment,
                storage_module,
                storage_module_health_check,
                storage_module_log,
                storage_module_write_stat,
                storage_provider,
                upload_queue
            ]
        );
        counts.push((DbKind::Records, q, m));

        let schema = builder
            .set_depth_limit(Some(limits.max_depth))
            .set_complexity_limit(Some(limits.max_complexity))
            .schema_builder()
            .finish()
            .map_err(|e| crate::Error::Schema(e.to_string()))?;

        let roots = map_root_fields(&schema, &counts).await?;
        Ok(Self { schema, roots, dbs: dbs.clone() })
    }

    /// The schema in SDL (what `schema.graphql` snapshots).
    pub fn sdl(&self) -> String {
        self.schema.sdl()
    }

    /// Which database a root field (query or mutation) reads or writes.
    pub fn database_of(&self, root_field: &str) -> Option<DbKind> {
        self.roots.get(root_field).copied()
    }

    /// Execute a request for `caller` (None: anonymous, refused every entity), routed to the
    /// one database its operation touches.
    pub async fn execute(
        &self,
        request: async_graphql::Request,
        caller: Option<guard::Caller>,
        state: Option<AppState>,
    ) -> async_graphql::Response {
        let mut request = request;
        if let Some(caller) = caller {
            request = request.data(caller);
        }
        if let Some(state) = state {
            request = request.data(state);
        }
        match self.route(&request) {
            Ok(Some(kind)) => {
                let conn: DatabaseConnection = self.dbs.get(kind).clone();
                self.schema.execute(request.data(conn)).await
            }
            Ok(None) => self.schema.execute(request).await,
            Err(message) => {
                async_graphql::Response::from_errors(vec![ServerError::new(message, None)])
            }
        }
    }

    /// Decide which database an operation touches. `Ok(None)`: none (introspection), or the
    /// document does not parse and execution will report why.
    fn route(&self, request: &async_graphql::Request) -> Result<Option<DbKind>, String> {
        let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
            return Ok(None);
        };
        // Writes go to the rows as sent: refuse control characters in their text first.
        input::check_mutation(&doc, &request.variables)?;
        let selection = match (&doc.operations, request.operation_name.as_deref()) {
            (DocumentOperations::Single(op), _) => &op.node.selection_set.node,
            (DocumentOperations::Multiple(ops), Some(name)) => {
                match ops.iter().find(|(n, _)| n.as_str() == name) {
                    Some((_, op)) => &op.node.selection_set.node,
                    None => return Ok(None),
                }
            }
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                match ops.values().next() {
                    Some(op) => &op.node.selection_set.node,
                    None => return Ok(None),
                }
            }
            (DocumentOperations::Multiple(_), None) => return Ok(None),
        };
        let mut names = Vec::new();
        collect_root_fields(&doc, selection, &mut HashSet::new(), &mut names);
        let mut kinds: Vec<(DbKind, &str)> = Vec::new();
        for name in &names {
            if META_FIELDS.contains(&name.as_str()) {
                continue;
            }
            if let Some(kind) = self.roots.get(name.as_str())
                && !kinds.iter().any(|(k, _)| k == kind)
            {
                kinds.push((*kind, name));
            }
        }
        match kinds.as_slice() {
            [] => Ok(None),
            [(kind, _)] => Ok(Some(*kind)),
            [(k1, f1), (k2, f2), ..] => Err(format!(
                "one GraphQL operation may read or write only one database, but {f1} is in the \
                 {k1} database and {f2} is in the {k2} database; send them as separate requests"
            )),
        }
    }
}

fn collect_root_fields(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    seen_fragments: &mut HashSet<String>,
    out: &mut Vec<String>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => out.push(f.node.name.node.to_string()),
            Selection::InlineFragment(fr) => {
                collect_root_fields(doc, &fr.node.selection_set.node, seen_fragments, out)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.to_string();
                if seen_fragments.insert(name.clone())
                    && let Some(def) = doc.fragments.get(spread.node.fragment_name.node.as_str())
                {
                    collect_root_fields(doc, &def.node.selection_set.node, seen_fragments, out);
                }
            }
        }
    }
}

/// Map each root field to its database. Root fields are registered database by database, so
/// the introspected field order (registration order) says which is which.
async fn map_root_fields(
    schema: &Schema,
    counts: &[(DbKind, usize, usize)],
) -> crate::Result<HashMap<String, DbKind>> {
    let introspection = schema
        .execute("{ __schema { queryType { fields { name } } mutationType { fields { name } } } }")
        .await;
    if !introspection.errors.is_empty() {
        return Err(crate::Error::Schema(format!("{:?}", introspection.errors)));
    }
    let json = introspection.data.into_json().map_err(|e| crate::Error::Schema(e.to_string()))?;
    let names = |root: &str| -> Vec<String> {
        json["__schema"][root]["fields"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["name"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let queries = names("queryType");
    let mutations: Vec<String> =
        names("mutationType").into_iter().filter(|n| !META_FIELDS.contains(&n.as_str())).collect();
    let mut map = HashMap::new();
    let (mut qi, mut mi) = (0, 0);
    for &(kind, q, m) in counts {
        for name in queries.iter().skip(qi).take(q) {
            map.insert(name.clone(), kind);
        }
        for name in mutations.iter().skip(mi).take(m) {
            map.insert(name.clone(), kind);
        }
        qi += q;
        mi += m;
    }
    if qi != queries.len() || mi != mutations.len() {
        return Err(crate::Error::Schema(format!(
            "root field bookkeeping is off: {qi}/{} queries, {mi}/{} mutations",
            queries.len(),
            mutations.len()
        )));
    }
    Ok(map)
}

/// `POST /graphql`: signed-in callers only; every entity is guarded by [`guard`].
#[handler]
pub async fn graphql_post(
    state: Data<&AppState>,
    req: &poem::Request,
    request: async_graphql_poem::GraphQLRequest,
) -> poem::Result<async_graphql_poem::GraphQLResponse> {
    let principal = req.extensions().get::<crate::auth::Principal>().ok_or_else(|| {
        poem::Error::from_string(
            "sign in first to use GraphQL",
            poem::http::StatusCode::UNAUTHORIZED,
        )
    })?;
    crate::auth::check_stage(principal)?;
    let caller = caller_of(principal, state.clock().now());
    Ok(state.graphql().execute(request.0, Some(caller), Some(state.clone())).await.into())
}

/// The GraphQL caller of a signed-in principal.
pub fn caller_of(
    principal: &crate::auth::Principal,
    now: chrono::DateTime<chrono::Utc>,
) -> guard::Caller {
    guard::Caller {
        subject: principal.subject.clone(),
        now,
        user: Some((principal.user.id, principal.user.username.clone())),
        ip: principal.ip.map(|ip| ip.to_string()),
    }
}

/// `GET /graphql`: GraphiQL, from the vendored React, ReactDOM and GraphiQL builds served under
/// `/static/` (see `static/vendor/README.md`), so it works with no internet.
#[handler]
pub async fn graphiql() -> Response {
    Html(include_str!("../static/graphiql.html")).into_response()
}

/// Run a GraphQL query as `caller` and return the response as JSON (for embedding code and
/// tests).
pub async fn execute_json(
    api: &GraphqlApi,
    caller: Option<guard::Caller>,
    query: &str,
) -> serde_json::Value {
    let response = api.execute(async_graphql::Request::new(query), caller, None).await;
    serde_json::to_value(&response).unwrap_or(serde_json::Value::Null)
}
