//! `face_matches`: a face seen on a camera, matched to an identity or not.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "face_matches")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The matched identity; None for an unknown face.
    pub identity_id: Option<i64>,
    /// Camera in the records database (by value).
    pub camera_id: i64,
    /// Segment in the records database (by value), when recorded.
    pub segment_id: Option<i64>,
    pub seen_at: DateTimeUtc,
    /// Distance to the best gallery embedding (smaller is closer).
    pub distance: f64,
    /// Detector confidence in 0..1.
    pub confidence: f64,
    /// Bounding box in the frame: `{"x":…,"y":…,"w":…,"h":…}` in pixels.
    pub bbox: Json,
    /// Cosine similarity to the matched identity (to the nearest one when unknown), -1..1.
    pub score: f64,
    /// Size of the analysed frame the box is in.
    pub frame_width: i32,
    pub frame_height: i32,
    /// The face as a small JPEG, sealed with the server key.
    #[seaography(ignore)]
    pub crop: Option<Vec<u8>>,
    /// The face's embedding (little-endian f32s), sealed with the server key, so a user can
    /// name the face later.
    #[seaography(ignore)]
    pub embedding: Option<Vec<u8>>,
    /// The embedding model that made `embedding`.
    pub model: Option<String>,
    /// When a user confirmed or rejected the match.
    pub labelled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::face_identity::Entity",
        from = "Column::IdentityId",
        to = "super::face_identity::Column::Id",
        on_delete = "SetNull"
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
