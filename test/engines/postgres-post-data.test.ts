/**
 * Which post-data entries restore -j N builds while other tables still load: an index or a
 * constraint on one loaded table; never a foreign key, a trigger, a partitioned table's index or
 * its attachment. The input is real `pg_restore --list` and `pg_restore -f -` output (PostgreSQL
 * 15) of a dump with quoted names, a schema with a dot, a partitioned table and a trigger.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { earlyPostData } from '../../src/engines/postgres/postgres-post-data.js';

const list = `3235; 2606 16459 CONSTRAINT public My "T" x My "T" x_pkey admin
3237; 2606 16461 CONSTRAINT public My "T" x My "T" x_v_key admin
3228; 2606 16391 CONSTRAINT public a a_pkey admin
3230; 2606 16398 CONSTRAINT public b b_pkey admin
3233; 2606 16405 CONSTRAINT public c c_pkey admin
3241; 2606 16468 CONSTRAINT s.p t2 t2_pkey admin
3238; 1259 16462 INDEX public idx q admin
3242; 1259 16476 INDEX public parted_k_idx admin
3243; 1259 16477 INDEX public parted_1_k_idx admin
3231; 1259 16478 INDEX public uq_b admin
3239; 1259 16469 INDEX s.p t2_id_idx admin
3244; 0 0 INDEX ATTACH public parted_1_k_idx admin
3246; 2620 16483 TRIGGER public trig tg admin
3245; 2606 16406 FK CONSTRAINT public c c_a_id_fkey admin
`;

const sql = String.raw`--
-- Name: My "T" x My "T" x_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public."My ""T"" x"
    ADD CONSTRAINT "My ""T"" x_pkey" PRIMARY KEY (id);


--
-- Name: My "T" x My "T" x_v_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public."My ""T"" x"
    ADD CONSTRAINT "My ""T"" x_v_key" UNIQUE (v);


--
-- Name: a a_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.a
    ADD CONSTRAINT a_pkey PRIMARY KEY (id);


--
-- Name: b b_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.b
    ADD CONSTRAINT b_pkey PRIMARY KEY (id);


--
-- Name: c c_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.c
    ADD CONSTRAINT c_pkey PRIMARY KEY (id);


--
-- Name: t2 t2_pkey; Type: CONSTRAINT; Schema: s.p; Owner: -
--

ALTER TABLE ONLY "s.p".t2
    ADD CONSTRAINT t2_pkey PRIMARY KEY (id);


--
-- Name: idx q; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX "idx q" ON public."My ""T"" x" USING btree (v);


--
-- Name: parted_k_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX parted_k_idx ON ONLY public.parted USING btree (k);


--
-- Name: parted_1_k_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX parted_1_k_idx ON public.parted_1 USING btree (k);


--
-- Name: uq_b; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX uq_b ON public.b USING btree (t);


--
-- Name: t2_id_idx; Type: INDEX; Schema: s.p; Owner: -
--

CREATE INDEX t2_id_idx ON "s.p".t2 USING btree (id);


--
-- Name: parted_1_k_idx; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.parted_k_idx ATTACH PARTITION public.parted_1_k_idx;


--
-- Name: trig tg; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER tg BEFORE INSERT ON public.trig FOR EACH ROW EXECUTE FUNCTION public.f();


--
-- Name: c c_a_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.c
    ADD CONSTRAINT c_a_id_fkey FOREIGN KEY (a_id) REFERENCES public.a(id);


--
-- PostgreSQL database dump complete
--


`;

describe('post-data entries built early', () => {
  const early = earlyPostData(list, sql);
  const ids = (table: string): number[] =>
    (early.get(table) ?? []).map((line) => Number.parseInt(line, 10)).sort((a, b) => a - b);

  it('ties indexes and constraints to their table, quoted names and dotted schemas included', () => {
    assert.deepEqual(ids('public My "T" x'), [3235, 3237, 3238]);
    assert.deepEqual(ids('public a'), [3228]);
    assert.deepEqual(ids('public b'), [3230, 3231], 'a unique index too');
    assert.deepEqual(ids('public c'), [3233], 'its primary key, not its foreign key');
    assert.deepEqual(ids('s.p t2'), [3239, 3241]);
    assert.deepEqual(ids('public parted_1'), [3243], 'a partition’s own index');
  });

  it('leaves foreign keys, triggers, partitioned indexes and attachments for the final step', () => {
    const all = [...early.values()].flat().map((line) => Number.parseInt(line, 10));
    for (const late of [3242, 3244, 3245, 3246]) assert.ok(!all.includes(late), `${late} is late`);
    assert.equal(early.get('public parted'), undefined);
    assert.equal(early.get('public trig'), undefined);
  });

  it('an entry whose list line and SQL header do not match is left late', () => {
    const renamed = list.replace('CONSTRAINT public a a_pkey', 'CONSTRAINT public a a_pk');
    assert.deepEqual(earlyPostData(renamed, sql).get('public a'), undefined);
    assert.equal(earlyPostData(list, '').size, 0);
  });
});
