//! `face_embeddings`: one embedding vector of an identity, from an upload, a recording or live
//! video. Negative examples ("not this person") are kept with `is_negative`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "face_embeddings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub identity_id: i64,
    /// Which model produced the vector (vectors of different models never compare).
    pub model: String,
    /// Vector length.
    pub dimensions: i32,
    /// The vector: little-endian f32s, encrypted at rest when `encrypted`. Never exposed by the
    /// API.
    #[seaography(ignore)]
    pub vector: Vec<u8>,
    pub encrypted: bool,
    /// `upload`, `recording` or `live`.
    pub source: String,
    /// Where the sample came from (segment id, upload name), for audit.
    pub source_ref: Option<String>,
    /// Detector confidence / quality score in 0..1.
    pub quality: f64,
    /// A negative example: this face is *not* the identity.
    pub is_negative: bool,
    pub created_at: DateTimeUtc,
    /// The enrolled face as a small JPEG, sealed with the server key. Never exposed by
    /// GraphQL; REST serves it decrypted to `faces.view`.
    #[seaography(ignore)]
    pub crop: Option<Vec<u8>>,
    /// The face event this example was taken from ("this is Alice" on a recorded face).
    pub match_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::face_identity::Entity",
        from = "Column::IdentityId",
        to = "super::face_identity::Column::Id",
        on_delete = "Cascade"
    )]
    FaceIdentity,
}

impl Related<super::face_identity::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::FaceIdentity.def()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelatedEntity)]
pub enum RelatedEntity {
    #[sea_orm(entity = "super::face_identity::Entity")]
    FaceIdentity,
}

impl ActiveModelBehavior for ActiveModel {}
